//! End-to-end tests of the `trib` binary: real processes, real files, real git.

mod catalog;
mod check;
mod commands;
mod crash;
mod kafka;
mod matrix;
mod models;
mod query;
mod trust;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `trib` in `dir` without colour, as a user would.
pub fn trib(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_trib"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("TRIB_LOG")
        .env_remove("TRIB_PROJECT")
        .output()
        .expect("trib runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh example project (`trib init`) in a temporary directory.
pub struct Example {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

/// Starts `trib serve ARGS` in `dir` and returns once it listens (its first stdout line
/// says where; the socket is bound by then).
pub fn serve(dir: &Path, args: &[&str], stderr: Stdio) -> Child {
    serve_with_addresses(dir, args, stderr).0
}

/// [`serve`], with its HTTP base URL and the address of its Postgres listener.
pub fn serve_with_addresses(dir: &Path, args: &[&str], stderr: Stdio) -> (Child, String, Option<String>) {
    // Tests run servers side by side: the Postgres port is chosen per server too.
    let pg: &[&str] = if args.contains(&"--pg-listen") {
        &[]
    } else {
        &["--pg-listen", "127.0.0.1:0"]
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_trib"))
        .arg("serve")
        .args(args)
        .args(pg)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut pg_addr = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read");
        assert!(!line.is_empty(), "trib serve exited before listening");
        if let Some(a) = line.strip_prefix("postgres on ") {
            pg_addr = Some(a.trim().to_string());
            continue;
        }
        let Some(http) = line.strip_prefix("listening on ") else {
            panic!("unexpected first output of trib serve: {line}")
        };
        return (child, http.trim().to_string(), pg_addr);
    }
}

impl Example {
    pub fn init() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let run = trib(tmp.path(), &["init", "shop"]);
        assert_eq!(run.code, 0, "init: {}", run.stderr);
        let dir = tmp.path().join("shop");
        Self { _tmp: tmp, dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).expect("read")
    }

    /// Replaces `from` by `to` in a project file; the edit must apply.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "`{from}` not in {rel}");
        std::fs::write(self.path(rel), text.replacen(from, to, 1)).expect("write");
    }

    pub fn trib(&self, args: &[&str]) -> Run {
        trib(&self.dir, args)
    }

    pub fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

pub fn shared() -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../../../shared/interop")
}
