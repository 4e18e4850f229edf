//! The man pages in `man/` and the shell completions in `completions/` are
//! generated from the clap definitions; this fails when someone changes the
//! command line without regenerating them.

use std::path::Path;

/// Runs `mcp-gateway GENERATOR DIR` into a fresh directory and compares every file
/// it writes with the committed copy in `committed` (relative to the crate root).
fn assert_current(generator: &str, committed: &str) -> Vec<String> {
    let fresh = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .arg(generator)
        .arg(fresh.path())
        .status()
        .unwrap();
    assert!(status.success(), "`mcp-gateway {generator}` failed");
    let committed_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(committed);
    let mut names: Vec<String> =
        std::fs::read_dir(fresh.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    names.sort();
    let regenerate = format!("cargo run --bin mcp-gateway -- {generator} {committed}");
    let stale: Vec<&String> = names
        .iter()
        .filter(|name| {
            let want = std::fs::read(fresh.path().join(name)).unwrap();
            std::fs::read(committed_dir.join(name)).ok() != Some(want)
        })
        .collect();
    assert!(stale.is_empty(), "{committed}/ is out of date ({stale:?}): run `{regenerate}`");
    // A committed file the generator no longer writes (a removed subcommand) is stale too.
    let extra: Vec<String> = std::fs::read_dir(&committed_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !names.contains(name))
        .collect();
    assert!(
        extra.is_empty(),
        "{committed}/ has files no command generates ({extra:?}): delete them and run `{regenerate}`"
    );
    names
}

#[test]
fn man_pages_are_current() {
    let names = assert_current("manpages", "man");
    assert!(names.contains(&"mcp-gateway.1".to_string()) && names.contains(&"mcp-gateway-connect.1".to_string()));
}

#[test]
fn completions_are_current() {
    let names = assert_current("completions", "completions");
    for binary in ["mcp-gateway", "mcp-gateway-connect"] {
        for file in [format!("{binary}.bash"), format!("_{binary}"), format!("{binary}.fish")] {
            assert!(names.contains(&file), "no {file} among {names:?}");
        }
    }
}

/// The committed bash completion completes past the first subcommand (see
/// `fix_bash_state_labels` in src/cli/generate.rs for the clap_complete bug).
#[test]
fn bash_completion_reaches_subcommand_options() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/mcp-gateway.bash");
    let complete = |words: &str| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                r#"source "$0"; COMP_WORDS=({words} ""); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1));
                   _mcp__gateway mcp-gateway "" "${{COMP_WORDS[COMP_CWORD-1]}}"; echo "${{COMPREPLY[*]}}""#
            ))
            .arg(&script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let top = complete("mcp-gateway");
    assert!(top.contains("serve") && top.contains("service") && !top.contains("manpages"), "{top}");
    let service = complete("mcp-gateway service");
    assert!(service.contains("install") && service.contains("uninstall"), "{service}");
    let install = complete("mcp-gateway service install");
    assert!(install.contains("--dry-run"), "{install}");
}
