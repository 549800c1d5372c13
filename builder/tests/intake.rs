//! Safe intake: good archives unpack, hostile ones are refused without
//! leaving anything behind (see `support::Sandbox::assert_untouched`).

mod support;

use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use builder::{unpack, unpack_file, ArchiveKind, BuildError, IntakeError, Limits};
use flate2::{write::GzEncoder, Compression};
use support::{assert_refused, listing, Sandbox, ABSOLUTE_PROBE};
use tar::EntryType;
use zip::write::SimpleFileOptions;

// ---------------------------------------------------------------- builders

/// A tar built header by header, so that it can say anything (the `tar`
/// crate's own setters refuse `..` and absolute paths).
#[derive(Default)]
struct Tar(Vec<u8>);

impl Tar {
    fn raw(mut self, name: &str, ty: EntryType, mode: u32, link: &str, data: &[u8]) -> Self {
        let mut h = tar::Header::new_gnu();
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(512), 0);
        self
    }
    fn file(self, name: &str, data: &str) -> Self {
        self.raw(name, EntryType::Regular, 0o644, "", data.as_bytes())
    }
    fn mode(self, name: &str, mode: u32) -> Self {
        self.raw(name, EntryType::Regular, mode, "", b"#!/bin/sh\n")
    }
    fn dir(self, name: &str) -> Self {
        self.raw(name, EntryType::Directory, 0o755, "", b"")
    }
    fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(name, EntryType::Symlink, 0o777, target, b"")
    }
    fn hard_link(self, name: &str, target: &str) -> Self {
        self.raw(name, EntryType::Link, 0o644, target, b"")
    }
    fn special(self, name: &str, ty: EntryType) -> Self {
        self.raw(name, ty, 0o644, "", b"")
    }
    fn bytes(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0; 1024]);
        self.0
    }
    fn gz(self) -> Vec<u8> {
        gzip(&self.bytes())
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn zip(build: impl FnOnce(&mut zip::ZipWriter<Cursor<Vec<u8>>>)) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    build(&mut w);
    w.finish().unwrap().into_inner()
}

fn deflated() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn small(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    f(&mut limits);
    limits
}

// ---------------------------------------------------------------- good uploads

fn sample() -> Tar {
    Tar::default()
        .file("main.py", "def start(args):\n    return 1\n")
        .dir("lib/")
        .file("lib/util.py", "X = 1\n")
        .mode("run.sh", 0o755)
}

fn assert_sample(sb: &Sandbox, done: &builder::Unpacked, kind: ArchiveKind, upload: &[u8]) {
    let dest = sb.dest();
    assert_eq!(done.kind, kind);
    assert_eq!(done.root, dest, "two top-level entries: the root is dest itself");
    assert_eq!(fs::read_to_string(dest.join("main.py")).unwrap(), "def start(args):\n    return 1\n");
    assert_eq!(fs::read_to_string(dest.join("lib/util.py")).unwrap(), "X = 1\n");
    assert_eq!(done.files, 4);
    assert_eq!(done.bytes, 30 + 6 + 10);
    use sha2::Digest;
    assert_eq!(done.checksum, format!("sha256:{}", hex::encode(sha2::Sha256::digest(upload))));
    assert_eq!(mode_of(&dest.join("main.py")), 0o644);
    assert_eq!(mode_of(&dest.join("run.sh")), 0o755);
    assert_eq!(mode_of(&dest.join("lib")), 0o755);
}

#[test]
fn good_tar() {
    let sb = Sandbox::new();
    let upload = sample().bytes();
    let done = unpack(&upload, &sb.dest(), &Limits::default()).unwrap();
    assert_sample(&sb, &done, ArchiveKind::Tar, &upload);
}

#[test]
fn good_tar_gz_from_a_file() {
    let sb = Sandbox::new();
    let upload = sample().gz();
    let file = sb.tmp.path().join("upload.bin"); // the name says nothing
    fs::write(&file, &upload).unwrap();
    let done = unpack_file(&file, &sb.dest(), &Limits::default()).unwrap();
    assert_sample(&sb, &done, ArchiveKind::TarGz, &upload);
}

#[test]
fn good_zip() {
    let sb = Sandbox::new();
    let upload = zip(|w| {
        w.start_file("main.py", deflated()).unwrap();
        w.write_all(b"def start(args):\n    return 1\n").unwrap();
        w.add_directory("lib/", SimpleFileOptions::default()).unwrap();
        w.start_file("lib/util.py", deflated()).unwrap();
        w.write_all(b"X = 1\n").unwrap();
        w.start_file("run.sh", deflated().unix_permissions(0o755)).unwrap();
        w.write_all(b"#!/bin/sh\n").unwrap();
    });
    let done = unpack(&upload, &sb.dest(), &Limits::default()).unwrap();
    assert_sample(&sb, &done, ArchiveKind::Zip, &upload);
}

#[test]
fn empty_zip_is_an_empty_tree() {
    let sb = Sandbox::new();
    let done = unpack(&zip(|_| {}), &sb.dest(), &Limits::default()).unwrap();
    assert_eq!((done.kind, done.files), (ArchiveKind::Zip, 0));
}

#[test]
fn old_style_tar_without_ustar_magic() {
    let sb = Sandbox::new();
    let mut h = tar::Header::new_old();
    h.set_path("main.py").unwrap();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    let mut upload = h.as_bytes().to_vec();
    upload.extend_from_slice(b"x=1");
    upload.resize(512 * 4, 0);
    let done = unpack(&upload, &sb.dest(), &Limits::default()).unwrap();
    assert_eq!(done.kind, ArchiveKind::Tar);
    assert_eq!(fs::read(sb.dest().join("main.py")).unwrap(), b"x=1");
}

#[test]
fn long_names_from_gnu_and_pax_headers() {
    let sb = Sandbox::new();
    let long = format!("{}/main.py", "d".repeat(150));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    b.append_data(&mut h, &long, &b"1"[..]).unwrap(); // writes a GNU 'L' header
    let pax_name = format!("{}/pax.py", "p".repeat(150));
    b.append_pax_extensions([("path", pax_name.as_bytes())]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("placeholder").unwrap();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"2"[..]).unwrap();
    let upload = b.into_inner().unwrap();
    unpack(&upload, &sb.dest(), &Limits::default()).unwrap();
    assert_eq!(fs::read(sb.dest().join(&long)).unwrap(), b"1");
    assert_eq!(fs::read(sb.dest().join(&pax_name)).unwrap(), b"2");
    assert!(!sb.dest().join("placeholder").exists());
}

#[test]
fn single_top_level_folder_is_the_root() {
    let sb = Sandbox::new();
    let upload = Tar::default().file("./algo/main.py", "").file("algo/lib/x.py", "").gz();
    let done = unpack(&upload, &sb.dest(), &Limits::default()).unwrap();
    assert_eq!(done.root, sb.dest().join("algo"));
    assert!(done.root.join("main.py").is_file());

    let sb = Sandbox::new();
    let upload = Tar::default().file("algo/main.py", "").file("README", "").bytes();
    assert_eq!(unpack(&upload, &sb.dest(), &Limits::default()).unwrap().root, sb.dest());

    let sb = Sandbox::new();
    let upload = Tar::default().file("main.py", "").bytes();
    assert_eq!(unpack(&upload, &sb.dest(), &Limits::default()).unwrap().root, sb.dest());
}

#[test]
fn modes_keep_only_the_owner_exec_bit() {
    let sb = Sandbox::new();
    let upload = Tar::default()
        .mode("setuid", 0o4755)
        .mode("setgid", 0o2711)
        .mode("sticky", 0o1644)
        .mode("group-exec-only", 0o654)
        .raw("shared/", EntryType::Directory, 0o3777, "", b"")
        .raw("private/", EntryType::Directory, 0o700, "", b"")
        .bytes();
    unpack(&upload, &sb.dest(), &Limits::default()).unwrap();
    let d = sb.dest();
    assert_eq!(mode_of(&d.join("setuid")), 0o755);
    assert_eq!(mode_of(&d.join("setgid")), 0o755);
    assert_eq!(mode_of(&d.join("sticky")), 0o644);
    assert_eq!(mode_of(&d.join("group-exec-only")), 0o644);
    assert_eq!(mode_of(&d.join("shared")), 0o755);
    assert_eq!(mode_of(&d.join("private")), 0o755);
}

#[test]
fn zip_setuid_is_stripped() {
    let sb = Sandbox::new();
    let upload = zip(|w| {
        let options = deflated().external_attributes((0o104755) << 16);
        w.start_file("tool", options).unwrap();
        w.write_all(b"#!/bin/sh\n").unwrap();
    });
    unpack(&upload, &sb.dest(), &Limits::default()).unwrap();
    assert_eq!(mode_of(&sb.dest().join("tool")), 0o755);
}

#[test]
fn ownership_and_mtimes_are_not_taken_from_the_archive() {
    let sb = Sandbox::new();
    let mut h = tar::Header::new_gnu();
    h.set_path("main.py").unwrap();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(12345);
    h.set_gid(54321);
    h.set_mtime(1);
    h.set_cksum();
    let mut upload = h.as_bytes().to_vec();
    upload.resize(512 * 3, 0);
    unpack(&upload, &sb.dest(), &Limits::default()).unwrap();
    let meta = fs::metadata(sb.dest().join("main.py")).unwrap();
    assert_ne!(meta.uid(), 12345);
    assert_ne!(meta.gid(), 54321);
    assert!(meta.mtime() > 1_000_000_000);
}

#[test]
fn links_inside_the_tree_are_fine() {
    let sb = Sandbox::new();
    let upload = Tar::default()
        .file("lib/data.txt", "data")
        .symlink("lib/alias.txt", "data.txt")
        .symlink("current", "lib")
        .symlink("up", "lib/..")
        .hard_link("copy.txt", "lib/data.txt")
        .bytes();
    let done = unpack(&upload, &sb.dest(), &Limits::default()).unwrap();
    let d = sb.dest();
    assert_eq!(fs::read_link(d.join("lib/alias.txt")).unwrap(), Path::new("data.txt"));
    assert_eq!(fs::read_to_string(d.join("current/alias.txt")).unwrap(), "data");
    // The hard link became an independent copy.
    assert_eq!(fs::read_to_string(d.join("copy.txt")).unwrap(), "data");
    let (a, b) = (fs::metadata(d.join("copy.txt")).unwrap(), fs::metadata(d.join("lib/data.txt")).unwrap());
    assert_ne!(a.ino(), b.ino());
    assert_eq!(done.bytes, 8);
}

#[test]
fn later_file_replaces_an_earlier_one() {
    let sb = Sandbox::new();
    let upload = Tar::default().file("a.txt", "old").file("a.txt", "new").dir("d/").dir("d/").bytes();
    unpack(&upload, &sb.dest(), &Limits::default()).unwrap();
    assert_eq!(fs::read_to_string(sb.dest().join("a.txt")).unwrap(), "new");
}

#[test]
fn an_existing_empty_dest_is_used_and_emptied_on_failure() {
    let sb = Sandbox::new();
    fs::create_dir(sb.dest()).unwrap();
    unpack(&sample().bytes(), &sb.dest(), &Limits::default()).unwrap();

    let sb = Sandbox::new();
    fs::create_dir(sb.dest()).unwrap();
    let upload = Tar::default().file("ok.txt", "x").file("../escape.txt", "x").bytes();
    unpack(&upload, &sb.dest(), &Limits::default()).unwrap_err();
    assert_eq!(listing(sb.tmp.path()), vec!["box", "box/dest"]);
}

#[test]
fn a_non_empty_dest_is_refused_and_left_alone() {
    let sb = Sandbox::new();
    fs::create_dir(sb.dest()).unwrap();
    fs::write(sb.dest().join("keep.txt"), "mine").unwrap();
    let err = unpack(&sample().bytes(), &sb.dest(), &Limits::default()).unwrap_err();
    assert_refused(&err, "is not empty", 500);
    assert_eq!(fs::read_to_string(sb.dest().join("keep.txt")).unwrap(), "mine");
}

#[test]
fn errors_convert_into_build_error() {
    let err: BuildError = IntakeError::UploadTooLarge { size: 2, limit: 1 }.into();
    assert!(matches!(err, BuildError::Intake(IntakeError::UploadTooLarge { .. })));
    assert_eq!(err.to_string(), "upload is 2 bytes, over the limit of 1 bytes");
}

// ---------------------------------------------------------------- refusals: names

#[test]
fn dotdot_entry() {
    let sb = Sandbox::new();
    let upload = Tar::default().file("main.py", "").file("../escape.txt", "pwned").bytes();
    let err = sb.refuse(&upload, &Limits::default());
    assert_refused(&err, "entry \"../escape.txt\": path contains a \"..\" component", 400);

    let sb = Sandbox::new();
    let err = sb.refuse(&Tar::default().file("a/../../escape.txt", "x").gz(), &Limits::default());
    assert_refused(&err, "\"a/../../escape.txt\"", 400);
}

#[test]
fn absolute_entry() {
    let sb = Sandbox::new();
    let err = sb.refuse(&Tar::default().file(ABSOLUTE_PROBE, "pwned").bytes(), &Limits::default());
    assert_refused(&err, &format!("entry \"{ABSOLUTE_PROBE}\": absolute path"), 400);
}

#[test]
fn zip_traversal_in_every_spelling() {
    for name in [
        "../escape.txt",
        "..\\escape.txt",
        "lib\\..\\..\\escape.txt",
        "C:\\Windows\\evil.dll",
        "\\\\server\\share\\x",
        ABSOLUTE_PROBE,
    ] {
        let sb = Sandbox::new();
        let upload = zip(|w| {
            w.start_file(name, deflated()).unwrap();
            w.write_all(b"pwned").unwrap();
        });
        let err = sb.refuse(&upload, &Limits::default());
        assert_refused(&err, &format!("entry \"{name}\""), 400);
    }
}

#[test]
fn path_too_long_or_too_deep() {
    let sb = Sandbox::new();
    let limits = small(|l| l.max_path_len = 20);
    let err = sb.refuse(&Tar::default().file(&"x".repeat(21), "").bytes(), &limits);
    assert_refused(&err, "path is 21 bytes long, over the limit of 20", 400);

    let sb = Sandbox::new();
    let limits = small(|l| l.max_depth = 3);
    let err = sb.refuse(&Tar::default().file("a/b/c/d.py", "").bytes(), &limits);
    assert_refused(&err, "entry \"a/b/c/d.py\": path is 4 levels deep", 400);
}

#[test]
fn gnu_long_name_larger_than_any_path_is_not_read() {
    let sb = Sandbox::new();
    // An 'L' header claiming 1 GiB of name: refused from the header alone.
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(EntryType::GNULongName);
    h.set_size(1 << 30);
    h.set_cksum();
    let mut upload = h.as_bytes().to_vec();
    upload.resize(4096, b'a');
    let err = sb.refuse(&gzip(&upload), &Limits::default());
    assert_refused(&err, "corrupt tar.gz: extension header of 1073741824 bytes", 400);
}

#[test]
fn only_directories_may_name_the_root() {
    for upload in [
        Tar::default().file(".", "x").bytes(),
        Tar::default().symlink(".", "..").bytes(),
        Tar::default().file("a", "").hard_link("./", "a").bytes(),
    ] {
        let sb = Sandbox::new();
        let err = sb.refuse(&upload, &Limits::default());
        assert_refused(&err, "path is empty or names the upload root", 400);
    }
}

// ---------------------------------------------------------------- refusals: links

#[test]
fn symlink_out_of_the_tree() {
    let sb = Sandbox::new();
    let err = sb.refuse(&Tar::default().dir("a/").symlink("a/link", "../../escape.txt").bytes(), &Limits::default());
    assert_refused(&err, "entry \"a/link\": symlink target \"../../escape.txt\" points outside the upload", 400);

    let sb = Sandbox::new();
    let err = sb.refuse(&Tar::default().symlink("passwd", "/etc/passwd").bytes(), &Limits::default());
    assert_refused(&err, "entry \"passwd\": symlink target \"/etc/passwd\" is absolute", 400);

    let sb = Sandbox::new();
    let upload = zip(|w| w.add_symlink("link", "../escape.txt", SimpleFileOptions::default()).unwrap());
    let err = sb.refuse(&upload, &Limits::default());
    assert_refused(&err, "entry \"link\": symlink target \"../escape.txt\" points outside", 400);
}

#[test]
fn symlink_chain_out_of_the_tree() {
    // Each link is fine lexically; followed by the kernel, `t` ends above
    // the root: `up` is `a`, so up/../../.. is three levels above `a/b`.
    let sb = Sandbox::new();
    let upload = Tar::default().dir("a/b/").symlink("a/b/up", "..").symlink("a/b/t", "up/../../..").bytes();
    let err = sb.refuse(&upload, &Limits::default());
    assert_refused(
        &err,
        "entry \"a/b/t\": symlink target \"up/../../..\" points outside the upload through other symlinks",
        400,
    );

    // Order does not help: the link used in the chain comes later.
    let sb = Sandbox::new();
    let upload = Tar::default().symlink("t", "x/../escape.txt").symlink("x", ".").bytes();
    let err = sb.refuse(&upload, &Limits::default());
    assert_refused(&err, "entry \"t\"", 400);
}

#[test]
fn hard_link_out_of_the_tree_or_not_yet_unpacked() {
    for (target, needle) in [
        ("../escape.txt", "hard link target \"../escape.txt\" is outside the upload"),
        ("/etc/passwd", "hard link target \"/etc/passwd\" is outside the upload"),
        ("later.txt", "hard link target \"later.txt\" has not been unpacked"),
        ("lib", "hard link target \"lib\" is not a regular file"),
    ] {
        let sb = Sandbox::new();
        let upload = Tar::default().dir("lib/").hard_link("hl", target).file("later.txt", "").bytes();
        let err = sb.refuse(&upload, &Limits::default());
        assert_refused(&err, &format!("entry \"hl\": {needle}"), 400);
    }
}

#[test]
fn writing_through_or_over_a_symlink() {
    // `sub -> .` is allowed by itself; writing through it is not.
    let sb = Sandbox::new();
    let upload = Tar::default().symlink("sub", ".").file("sub/escape.txt", "x").bytes();
    let err = sb.refuse(&upload, &Limits::default());
    assert_refused(&err, "entry \"sub/escape.txt\": parent \"sub\" is a symlink", 400);

    let sb = Sandbox::new();
    let upload = Tar::default().file("real.txt", "").symlink("a.txt", "real.txt").file("a.txt", "x").bytes();
    let err = sb.refuse(&upload, &Limits::default());
    assert_refused(&err, "entry \"a.txt\": would overwrite the symlink", 400);

    let sb = Sandbox::new();
    let upload = Tar::default().symlink("d", ".").dir("d/").bytes();
    assert_refused(&sb.refuse(&upload, &Limits::default()), "entry \"d/\": would overwrite the symlink", 400);

    let sb = Sandbox::new();
    let upload = Tar::default().file("f", "").file("f/x", "").bytes();
    assert_refused(&sb.refuse(&upload, &Limits::default()), "parent \"f\" is not a directory", 400);

    let sb = Sandbox::new();
    let upload = Tar::default().dir("d/").file("d", "").bytes();
    assert_refused(&sb.refuse(&upload, &Limits::default()), "entry \"d\": conflicts with an earlier entry", 400);
}

// ---------------------------------------------------------------- refusals: special entries

#[test]
fn devices_and_fifos() {
    for (ty, what) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "FIFO"),
        (EntryType::GNUSparse, "sparse file"),
        (EntryType::new(b'V'), "tar type 'V'"),
    ] {
        let sb = Sandbox::new();
        let err = sb.refuse(&Tar::default().file("ok.py", "").special("dev/x", ty).bytes(), &Limits::default());
        assert_refused(&err, &format!("entry \"dev/x\": {what} entries are not allowed"), 400);
    }
}

#[test]
fn zip_fifo_and_socket() {
    for (mode, what) in [(0o010644, "FIFO"), (0o140755, "socket"), (0o020644, "character device")] {
        let sb = Sandbox::new();
        let upload =
            zip(|w| w.start_file("pipe", SimpleFileOptions::default().external_attributes(mode << 16)).unwrap());
        let err = sb.refuse(&upload, &Limits::default());
        assert_refused(&err, &format!("entry \"pipe\": {what} entries are not allowed"), 400);
    }
}

// ---------------------------------------------------------------- refusals: sizes

#[test]
fn gzip_bomb_stops_at_the_limit() {
    let sb = Sandbox::new();
    let zeros = vec![0u8; 8 << 20];
    let upload = Tar::default().raw("zeros.bin", EntryType::Regular, 0o644, "", &zeros).gz();
    assert!(upload.len() * 100 < zeros.len(), "a bomb: over 100 times smaller than its content");
    let err = sb.refuse(&upload, &small(|l| l.max_unpacked_bytes = 1 << 20));
    assert_refused(&err, "unpacked size passes the limit of 1048576 bytes (at entry \"zeros.bin\")", 413);
}

#[test]
fn zip_bomb_stops_at_the_limit() {
    let sb = Sandbox::new();
    let upload = zip(|w| {
        for i in 0..4 {
            w.start_file(format!("zeros{i}.bin"), deflated()).unwrap();
            w.write_all(&vec![0u8; 1 << 20]).unwrap();
        }
    });
    let err = sb.refuse(&upload, &small(|l| l.max_unpacked_bytes = 3 << 20));
    assert_refused(&err, "unpacked size passes the limit of 3145728 bytes (at entry \"zeros3.bin\")", 413);
}

#[test]
fn data_the_writer_never_sees_is_budgeted_too() {
    // A directory entry "holding" 8 MiB of zeros: the tar reader skips them,
    // and the stream budget stops it (limit 1 MiB + 2 entries * 16 KiB).
    let sb = Sandbox::new();
    let upload = Tar::default().raw("d/", EntryType::Directory, 0o755, "", &vec![0u8; 8 << 20]).gz();
    let err = sb.refuse(
        &upload,
        &small(|l| {
            l.max_unpacked_bytes = 1 << 20;
            l.max_files = 2;
        }),
    );
    assert_refused(&err, "unpacked size passes the limit", 413);
}

#[test]
fn too_many_entries() {
    let mut tar = Tar::default();
    for i in 0..11 {
        tar = tar.file(&format!("f{i}.py"), "");
    }
    let sb = Sandbox::new();
    let err = sb.refuse(&tar.bytes(), &small(|l| l.max_files = 10));
    assert_refused(&err, "archive holds more than 10 entries (at entry \"f10.py\")", 413);

    // Implied directories count: a/b/c/d.py creates four entries.
    let sb = Sandbox::new();
    let err = sb.refuse(&Tar::default().file("a/b/c/d.py", "").bytes(), &small(|l| l.max_files = 3));
    assert_refused(&err, "more than 3 entries", 413);

    let sb = Sandbox::new();
    let upload = zip(|w| {
        for i in 0..11 {
            w.start_file(format!("f{i}.py"), SimpleFileOptions::default()).unwrap();
        }
    });
    let err = sb.refuse(&upload, &small(|l| l.max_files = 10));
    assert_refused(&err, "archive holds more than 10 entries (at entry \"f10.py\")", 413);
}

#[test]
fn upload_too_large() {
    let limits = small(|l| l.max_upload_bytes = 1000);
    let upload = sample().bytes();
    let sb = Sandbox::new();
    let err = sb.refuse(&upload, &limits);
    assert_refused(&err, &format!("upload is {} bytes, over the limit of 1000 bytes", upload.len()), 413);

    let sb = Sandbox::new();
    let file = sb.tmp.path().join("box/upload.tar");
    fs::write(&file, &upload).unwrap();
    let err = unpack_file(&file, &sb.dest(), &limits).unwrap_err();
    assert_refused(&err, "over the limit of 1000 bytes", 413);
    assert!(!sb.dest().exists());
}

// ---------------------------------------------------------------- refusals: not archives

#[test]
fn not_an_archive() {
    let sb = Sandbox::new();
    let err = sb.refuse(b"hello, this is not an archive\n", &Limits::default());
    assert_refused(&err, "not a tar, tar.gz or zip archive (starts with bytes 68 65 6c 6c 6f 2c 20 74)", 400);

    let sb = Sandbox::new();
    assert_refused(&sb.refuse(b"", &Limits::default()), "not a tar, tar.gz or zip archive (the upload is empty)", 400);

    // A name that lies does not matter either.
    let sb = Sandbox::new();
    let file = sb.tmp.path().join("box/algo.tar.gz");
    fs::write(&file, "print('hi')\n").unwrap();
    let err = unpack_file(&file, &sb.dest(), &Limits::default()).unwrap_err();
    assert_refused(&err, "not a tar, tar.gz or zip archive", 400);
}

#[test]
fn gzip_of_something_else() {
    let sb = Sandbox::new();
    let err = sb.refuse(&gzip(&[b'x'; 2000]), &Limits::default());
    assert_refused(&err, "corrupt tar.gz: the data is not a tar archive", 400);
}

#[test]
fn truncated_archives() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let full = Tar::default().raw("data.bin", EntryType::Regular, 0o644, "", &data).file("z.py", "").gz();

    let sb = Sandbox::new();
    let err = sb.refuse(&full[..full.len() / 2], &Limits::default());
    assert_refused(&err, "corrupt tar.gz: ", 400);

    // Cut in the gzip trailer only: every tar block is there, the CRC is not.
    let sb = Sandbox::new();
    let err = sb.refuse(&full[..full.len() - 4], &Limits::default());
    assert_refused(&err, "corrupt tar.gz: ", 400);

    let tar = Tar::default().raw("data.bin", EntryType::Regular, 0o644, "", &data).bytes();
    let sb = Sandbox::new();
    let err = sb.refuse(&tar[..100_000], &Limits::default());
    assert_refused(&err, "corrupt tar: entry \"data.bin\" is truncated", 400);

    let zipped = zip(|w| {
        w.start_file("data.bin", deflated()).unwrap();
        w.write_all(&data).unwrap();
    });
    let sb = Sandbox::new();
    let err = sb.refuse(&zipped[..zipped.len() - 10], &Limits::default());
    assert_refused(&err, "corrupt zip: ", 400);
}
