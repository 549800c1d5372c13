//! A check of SQLite's write-ahead log before the database is opened.
//!
//! SQLite replays the `-wal` file when it opens a database whose last
//! connection did not close cleanly. It replays frames only as long as their
//! checksums hold, and it silently ignores everything from the first bad
//! frame on (and the whole file when the header is bad). A damaged log
//! therefore drops committed transactions without a word: the server would
//! come up with an emptied history. This module reads the log the way SQLite
//! would and refuses when a *committed* transaction would be lost.
//!
//! The format (<https://www.sqlite.org/fileformat.html#the_write_ahead_log>):
//! a 32-byte header (magic `0x377f0682`/`0x377f0683`, version, page size,
//! checkpoint sequence, two salts, a checksum of the first 24 bytes), then
//! frames of a 24-byte header (page number, database size after commit —
//! non-zero on a transaction's last frame —, the two salts, a cumulative
//! checksum) and one page. Frames from before the last log restart carry old
//! salts: they are stale, not damage. A torn tail after the last commit is an
//! uncommitted transaction: losing it is what SQLite promises.

use std::path::Path;

use crate::error::RunnerError;

const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;
const VERSION: u32 = 3_007_000;

/// What stands between a damaged log and the data it would lose.
#[derive(Debug, PartialEq)]
pub(crate) enum Damage {
    /// The header is unreadable but frames follow it.
    Header(&'static str),
    /// Frame `frame` (0-based, at byte `offset`) fails its checksum and a
    /// committed transaction lies at or after it.
    Frame { frame: usize, offset: usize },
}

/// Refuse to open a database whose log would silently lose committed data.
pub(crate) fn check(db: &Path) -> Result<(), RunnerError> {
    let wal = wal_path(db);
    let bytes = match std::fs::read(&wal) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(RunnerError::WalUnreadable { path: wal, source }),
    };
    let Some(damage) = inspect(&bytes) else { return Ok(()) };
    let what = match damage {
        Damage::Header(why) => format!("its header is damaged ({why})"),
        Damage::Frame { frame, offset } => format!("frame {frame} (byte {offset}) fails its checksum"),
    };
    Err(RunnerError::Damaged(format!(
        "the write-ahead log {} is damaged: {what}, and committed records in it would be lost silently. \
         The server did not start. Restore the data dir from a backup, or move {} aside to start from {} alone \
         (losing the records only the log holds)",
        wal.display(),
        wal.display(),
        db.display()
    )))
}

pub(crate) fn wal_path(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// `None` when SQLite would replay every committed transaction in `wal`.
pub(crate) fn inspect(wal: &[u8]) -> Option<Damage> {
    if wal.len() <= HEADER {
        // No frame: nothing committed lives here.
        return None;
    }
    let word = |at: usize| u32::from_be_bytes(wal[at..at + 4].try_into().expect("4 bytes"));
    let magic = word(0);
    if magic & !1 != 0x377f_0682 {
        return Some(Damage::Header("bad magic number"));
    }
    if word(4) != VERSION {
        return Some(Damage::Header("unknown format version"));
    }
    let page = word(8) as usize;
    if !(512..=65536).contains(&page) || !page.is_power_of_two() {
        return Some(Damage::Header("impossible page size"));
    }
    let big_endian = magic & 1 == 1;
    let header_sum = checksum(big_endian, (0, 0), &wal[..24]);
    if header_sum != (word(24), word(28)) {
        return Some(Damage::Header("bad checksum"));
    }
    let salts = (word(16), word(20));
    let frame_len = FRAME_HEADER + page;
    let frames = (wal.len() - HEADER) / frame_len;
    let mut sum = header_sum;
    let mut first_bad = None;
    for i in 0..frames {
        let at = HEADER + i * frame_len;
        let current = (word(at + 8), word(at + 12)) == salts;
        if first_bad.is_none() {
            if current {
                sum = checksum(big_endian, sum, &wal[at..at + 8]);
                sum = checksum(big_endian, sum, &wal[at + FRAME_HEADER..at + frame_len]);
            }
            if !current || sum != (word(at + 16), word(at + 20)) {
                first_bad = Some((i, at));
            }
        }
        // A commit of this log generation that SQLite would not reach.
        if let Some((frame, offset)) = first_bad {
            if current && word(at + 4) != 0 {
                return Some(Damage::Frame { frame, offset });
            }
        }
    }
    None
}

/// SQLite's WAL checksum: pairs of 32-bit words in the log's byte order.
fn checksum(big_endian: bool, (mut s0, mut s1): (u32, u32), data: &[u8]) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let w = |b: &[u8]| {
            let b: [u8; 4] = b.try_into().expect("4 bytes");
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        s0 = s0.wrapping_add(w(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(w(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

#[cfg(test)]
mod tests;
