//! The package definitions name files that live elsewhere in the repository: the
//! Homebrew formula and the `.deb`/`.rpm` metadata in Cargo.toml must cover every
//! man page, completion file and systemd unit. (scripts/package.sh builds the
//! `.deb` and `.rpm` and checks their contents; this catches a formula or an
//! asset list left behind when a file is added, without building anything.)

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files_in(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "{dir}/ is empty");
    names
}

#[test]
fn the_homebrew_formula_installs_everything() {
    let formula = std::fs::read_to_string(root().join("packaging/homebrew/mcp-gateway.rb")).unwrap();
    let mut missing = Vec::new();
    // Every man page, by the glob (new subcommands' pages come along by themselves).
    assert!(files_in("man").iter().all(|page| page.ends_with(".1")), "man/ has a file that is not a section-1 page");
    if !formula.contains(r#"man1.install Dir["man/*.1"]"#) {
        missing.push(r#"man1.install Dir["man/*.1"]"#.to_string());
    }
    for file in files_in("completions") {
        if !formula.contains(&format!("\"completions/{file}\"")) {
            missing.push(format!("completions/{file}"));
        }
    }
    for needle in [
        "depends_on \"rust\" => :build",
        "system \"cargo\", \"install\", *std_cargo_args",
        "service do",
        "run [opt_bin/\"mcp-gateway\", \"serve\"]",
        "keep_alive true",
        "mcp-gateway service install",
        "test do",
    ] {
        if !formula.contains(needle) {
            missing.push(needle.to_string());
        }
    }
    assert!(missing.is_empty(), "packaging/homebrew/mcp-gateway.rb lacks: {missing:#?}");
}

/// The `source` of every asset in `[package.metadata.<tool>]`.
fn asset_sources(manifest: &toml::Table, tool: &str) -> Vec<String> {
    let assets = manifest["package"]["metadata"][tool]["assets"].as_array().unwrap();
    assets
        .iter()
        .map(|asset| match asset {
            toml::Value::Array(a) => a[0].as_str().unwrap().to_string(),
            toml::Value::Table(t) => t["source"].as_str().unwrap().to_string(),
            other => panic!("asset {other:?}"),
        })
        .collect()
}

#[test]
fn the_deb_and_rpm_metadata_package_everything() {
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml")).unwrap().parse().unwrap();
    // The rpm's binaries and man pages are stripped and gzipped copies (scripts/package.sh).
    for (tool, staged) in [("deb", "target/release/"), ("generate-rpm", "target/release/rpm/")] {
        let man = if tool == "deb" { "man/*.1".to_string() } else { format!("{staged}man/*.1.gz") };
        let sources = asset_sources(&manifest, tool);
        let covered = |file: &str| {
            sources.iter().any(|source| match source.split_once('*') {
                Some((head, tail)) => file.starts_with(head) && file.ends_with(tail),
                None => source == file,
            })
        };
        let mut missing: Vec<String> = [format!("{staged}mcp-gateway"), format!("{staged}mcp-gateway-connect"), man]
            .into_iter()
            .filter(|s| !sources.contains(s))
            .collect();
        for dir in ["completions", "systemd"] {
            missing.extend(files_in(dir).into_iter().map(|f| format!("{dir}/{f}")).filter(|f| !covered(f)));
        }
        assert!(missing.is_empty(), "[package.metadata.{tool}] assets lack: {missing:#?}");
    }
}

/// The package description is the `.deb`'s synopsis and the `.rpm`'s summary: one
/// line, under 80 characters (cargo-deb wraps a longer one into the extended
/// description).
#[test]
fn the_package_description_fits_a_synopsis() {
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml")).unwrap().parse().unwrap();
    let description = manifest["package"]["description"].as_str().unwrap();
    assert!(
        description.len() < 80 && !description.contains('\n'),
        "description too long for a synopsis: {description:?}"
    );
}

/// The formula names the project's real address, and `scripts/release.sh`
/// writes the tap's copy for a release: its tarball's url and sha256, nothing
/// left to fill in by hand.
#[test]
fn the_release_script_writes_the_formula_for_a_tarball() {
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml")).unwrap().parse().unwrap();
    let repository = manifest["package"]["repository"].as_str().unwrap();
    assert_eq!(manifest["package"]["homepage"].as_str(), Some(repository));
    let version = manifest["package"]["version"].as_str().unwrap();
    let template = std::fs::read_to_string(root().join("packaging/homebrew/mcp-gateway.rb")).unwrap();
    assert!(template.contains(&format!("homepage \"{repository}\"")), "{template}");
    assert!(
        template.contains(&format!("url \"{repository}/releases/download/v{version}/mcp-gateway-{version}.tar.gz\"")),
        "the formula's url is not this version's release tarball"
    );
    assert!(!template.contains(".invalid"), "a placeholder address is left");

    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("mcp-gateway-9.8.7.tar.gz");
    std::fs::write(&tarball, b"not really a tarball").unwrap();
    let out = std::process::Command::new("bash")
        .arg(root().join("scripts/release.sh"))
        .args(["--formula", "9.8.7"])
        .arg(&tarball)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let formula = String::from_utf8_lossy(&out.stdout);
    let digest = std::process::Command::new("sha256sum").arg(&tarball).output().unwrap();
    let digest = String::from_utf8_lossy(&digest.stdout).split_whitespace().next().unwrap().to_string();
    assert!(formula.contains(&format!("  sha256 \"{digest}\"\n")), "{formula}");
    assert!(
        formula.contains(&format!("  url \"{repository}/releases/download/v9.8.7/mcp-gateway-9.8.7.tar.gz\"\n")),
        "{formula}"
    );
    assert_eq!(formula.lines().count(), template.lines().count(), "only the url and sha256 lines change");
}
