//! Test support for the integration tests of the other crates: `trib init`'s example
//! project, copied into a temporary directory and loaded. Only a dev-dependency; it
//! never ships in the binary.

use std::path::{Path, PathBuf};
use trib_spec::Project;

/// The example project (`trib init`'s template, named `shop`) in a temporary directory,
/// with `edit` applied to its `trib.toml`. Panics on any problem: it is for tests.
pub fn example(edit: impl Fn(String) -> String) -> (tempfile::TempDir, Project) {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_dir(&template(), tmp.path());
    let settings = tmp.path().join("trib.toml");
    let text = std::fs::read_to_string(&settings).expect("settings");
    std::fs::write(&settings, edit(text.replace("{{name}}", "shop"))).expect("settings");
    let project = trib_spec::load_project(tmp.path()).expect("project");
    assert!(!project.diagnostics.has_errors(), "{:?}", project.diagnostics);
    (tmp, project)
}

/// The template directory of `trib init`, found from the directory of the crate whose
/// tests run (read when the test runs, so a build cache shared by several checkouts
/// still points into the right one).
pub fn template() -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../trib/template")
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}
