//! The man pages in `man/` are generated from the clap definitions; this fails when
//! someone changes the command line without regenerating them.

use std::path::Path;

#[test]
fn man_pages_are_current() {
    let fresh = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .arg("manpages")
        .arg(fresh.path())
        .status()
        .unwrap();
    assert!(status.success());
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut names: Vec<_> = std::fs::read_dir(fresh.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    for name in names {
        let want = std::fs::read_to_string(fresh.path().join(&name)).unwrap();
        let have = std::fs::read_to_string(committed.join(&name)).unwrap_or_default();
        assert!(
            want == have,
            "man/{} is out of date: run `cargo run --bin mcp-gateway -- manpages man`",
            name.to_string_lossy()
        );
    }
}
