//! Keeping `DISTRIBUTEDKUBE_REGISTRY_PASSWORD` away from algorithms.
//!
//! Workers start with a clean environment, but that is not enough: any
//! process of the same user can read the server's *initial* environment in
//! `/proc/<server pid>/environ` (an algorithm finds it as its parent), and
//! removing the variable later does not change that file. So a server
//! started with the variable set re-executes itself at once, before any
//! worker exists, without it: the same binary, the same pid and arguments,
//! and the password handed over through a pipe on stdin, read as
//! `--registry-password-file /dev/stdin`. Nothing of it stays on disk or in
//! any process's environment.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;

pub const PASSWORD_VAR: &str = "DISTRIBUTEDKUBE_REGISTRY_PASSWORD";

/// A pipe holds at least this much without a reader (Linux: 64 KiB).
const PIPE_ROOM: usize = 60 * 1024;

/// For `serve` with the variable set: re-execute without it. Returns only
/// when there is nothing to do (or with the reason it could not).
pub fn reexec_without_password() -> anyhow::Result<()> {
    let Some(password) = std::env::var_os(PASSWORD_VAR) else { return Ok(()) };
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_else(|| OsString::from("distributedkube"));
    let args: Vec<OsString> = args.collect();
    if args.first().is_none_or(|a| a != "serve") {
        return Ok(());
    }
    let mut command = Command::new("/proc/self/exe");
    command.arg0(program).args(&args).env_remove(PASSWORD_VAR);
    // A password given on the command line or in a file wins over the variable.
    let given = args.iter().any(|a| a.to_string_lossy().starts_with("--registry-password"));
    if !given {
        let password = password.into_encoded_bytes();
        if password.len() > PIPE_ROOM {
            anyhow::bail!(
                "{PASSWORD_VAR} is longer than {PIPE_ROOM} bytes; put it in a file and use --registry-password-file"
            );
        }
        let (reader, mut writer) = std::io::pipe()?;
        writer.write_all(&password)?;
        drop(writer);
        command.arg("--registry-password-file").arg("/dev/stdin").stdin(reader);
    }
    let error = command.exec();
    Err(anyhow::anyhow!("cannot re-execute the server without {PASSWORD_VAR} in its environment: {error}"))
}
