//! The few git questions `trib` asks: is this a repository, and what did a file look
//! like at a revision. Uses the `git` command, as users have it.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The top directory of the repository holding `dir`, if any.
pub fn toplevel(dir: &Path) -> Option<PathBuf> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let top = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(top.trim()))
}

/// Whether `rev` names a commit in the repository at `top`.
pub fn has_revision(top: &Path, rev: &str) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The text of `file` at `rev`, or `None` if the file did not exist there.
pub fn show(file: &Path, rev: &str) -> Result<Option<String>> {
    let abs = std::fs::canonicalize(file).with_context(|| format!("cannot find `{}`", file.display()))?;
    let dir = abs.parent().unwrap_or(Path::new("."));
    let Some(top) = toplevel(dir) else {
        bail!(
            "`{}` is not in a git repository; hint: pass two files to `trib diff OLD NEW`",
            file.display()
        );
    };
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    let rel = abs
        .strip_prefix(&top)
        .unwrap_or(&abs)
        .to_string_lossy()
        .replace('\\', "/");
    if !has_revision(&top, rev) {
        bail!("`{rev}` is not a revision of the repository at `{}`", top.display());
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(&top)
        .args(["show", &format!("{rev}:{rel}")])
        .output()
        .context("cannot run `git`")?;
    if !out.status.success() {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The files under `dir` that differ between `rev` and the working tree, as absolute
/// paths: one `git diff` for a project of any size, so that only those are compared.
pub fn changed_since(dir: &Path, rev: &str) -> Result<std::collections::BTreeSet<PathBuf>> {
    let abs = std::fs::canonicalize(dir).with_context(|| format!("cannot find `{}`", dir.display()))?;
    let Some(top) = toplevel(&abs) else {
        bail!("`{}` is not in a git repository", dir.display());
    };
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    let out = Command::new("git")
        .arg("-C")
        .arg(&top)
        .args(["diff", "--name-only", "-z", "--no-renames", rev, "--"])
        .arg(&abs)
        .output()
        .context("cannot run `git`")?;
    if !out.status.success() {
        bail!(
            "`git diff {rev}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| top.join(String::from_utf8_lossy(p).as_ref()))
        .collect())
}

/// The commit checked out in the repository holding `dir`, if any.
pub fn head(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}
