//! The module graph of `src/` points one way, and the layout in `src/lib.rs`
//! says which way: a CI check that fails when a `crate::` path points from a
//! module to one on its own floor or above (which is also what a cycle needs),
//! when a module is missing from the layout, or when two files of one module
//! directory import each other (directly or round a loop). A newcomer reads the
//! floors in `lib.rs`; this keeps them true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comment lines: a doc comment naming a module is not a
/// dependency on it.
fn code_of(text: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The first path segments after each occurrence of `prefix` (`crate::`,
/// `super::`), grouped imports (`use crate::{a, b::c}`) included.
fn references(text: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices(prefix) {
        let rest = &text[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level commas only: `{a::{b, c}, d}` names a and d.
            let (mut depth, mut start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        names.insert(ident(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.insert(ident(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(ident(rest));
        }
    }
    names.remove("");
    names
}

/// Top-level module → the top-level modules it uses.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let module_of = |path: &Path| -> Option<String> {
        let relative = path.strip_prefix(src).ok()?;
        let first = relative.components().next()?.as_os_str().to_str()?;
        match first {
            "lib.rs" | "bin" => None,
            name => Some(name.trim_end_matches(".rs").to_string()),
        }
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in &files {
        let Some(module) = module_of(file) else { continue };
        let text = code_of(&std::fs::read_to_string(file).expect("read source"));
        for used in references(&text, "crate::") {
            if used != module && modules.contains(&used) {
                graph.get_mut(&module).expect("module").insert(used);
            }
        }
    }
    graph
}

/// The floors `src/lib.rs`'s `# Layout` gives: `//! Floor N…` lines, each
/// followed by `//! - `module`…` (or ``[`module`]``) lines.
fn layout(lib: &str) -> BTreeMap<String, u32> {
    let mut floors = BTreeMap::new();
    let mut floor = None;
    for line in lib.lines().filter_map(|l| l.strip_prefix("//!")).map(str::trim) {
        if let Some(rest) = line.strip_prefix("Floor ") {
            floor = rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok());
        } else if let (Some(item), Some(floor)) = (line.strip_prefix("- "), floor) {
            let name = item.trim_start_matches('[').trim_start_matches('`');
            let name: String = name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            assert!(floors.insert(name.clone(), floor).is_none(), "`{name}` is on two floors of the layout");
        }
    }
    floors
}

/// The strongly connected components of more than one node (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: BTreeSet<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            for next in &self.graph[node] {
                if !self.index.contains_key(next.as_str()) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next.as_str()]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next.as_str()) {
                    let low = self.low[node].min(self.index[next.as_str()]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    component.push(top.to_string());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.insert(component);
                }
            }
        }
    }
    let mut walk =
        Walk { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: BTreeSet::new() };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

/// The files (and subdirectories) of one module directory and which of them
/// each one uses, through `super::x` or `crate::<this module>::x`. `mod.rs`
/// is the parent, not a sibling: its children may use what it defines.
fn sibling_graph(src: &Path, dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let module_path = dir.strip_prefix(src).expect("below src").to_string_lossy().replace('/', "::");
    let mut units: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            units.entry(name).or_default().extend(files);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "mod" {
            units.entry(name).or_default().push(path);
        }
    }
    let names: BTreeSet<String> = units.keys().cloned().collect();
    units
        .iter()
        .map(|(unit, files)| {
            let mut used = BTreeSet::new();
            for file in files {
                let text = code_of(&std::fs::read_to_string(file).expect("read source"));
                // A file directly in `dir` reaches its siblings through `super::`.
                if file.parent() == Some(dir) {
                    used.extend(references(&text, "super::"));
                }
                used.extend(references(&text, &format!("crate::{module_path}::")));
            }
            let siblings = used.into_iter().filter(|u| u != unit && names.contains(u)).collect();
            (unit.clone(), siblings)
        })
        .collect()
}

#[test]
fn every_module_is_on_a_floor_of_the_layout() {
    let graph = module_graph(&src());
    let floors = layout(&std::fs::read_to_string(src().join("lib.rs")).expect("read lib.rs"));
    let modules: BTreeSet<&String> = graph.keys().collect();
    let listed: BTreeSet<&String> = floors.keys().collect();
    let missing: Vec<_> = modules.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&modules).collect();
    assert!(missing.is_empty(), "modules of src/ missing from the layout in src/lib.rs: {missing:?}");
    assert!(stale.is_empty(), "the layout in src/lib.rs names modules that do not exist: {stale:?}");
}

#[test]
fn top_level_modules_import_only_from_lower_floors() {
    let graph = module_graph(&src());
    let floors = layout(&std::fs::read_to_string(src().join("lib.rs")).expect("read lib.rs"));
    let floor = |m: &str| floors.get(m).copied().unwrap_or(0);
    let wrong: Vec<String> = graph
        .iter()
        .flat_map(|(m, used)| used.iter().map(move |u| (m, u)))
        .filter(|(m, u)| floor(u) >= floor(m))
        .map(|(m, u)| format!("{m} (floor {}) → {u} (floor {})", floor(m), floor(u)))
        .collect();
    assert!(
        wrong.is_empty(),
        "imports that point sideways or up (move the code, or the module's floor in src/lib.rs): {wrong:#?}"
    );
    assert!(cycles(&graph).is_empty(), "import cycles between top-level modules: {:?}", cycles(&graph));
}

#[test]
fn files_of_a_module_import_one_way() {
    let src = src();
    let mut dirs = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path.clone());
                dirs.push(path);
            }
        }
    }
    let found: Vec<String> = dirs
        .iter()
        .filter(|dir| !dir.ends_with("bin"))
        .flat_map(|dir| {
            let graph = sibling_graph(&src, dir);
            let shown = dir.strip_prefix(&src).expect("below src").display().to_string();
            cycles(&graph).into_iter().map(move |c| format!("{shown}/: {c:?}"))
        })
        .collect();
    assert!(found.is_empty(), "files of one module that import each other: {found:#?}");
}

#[test]
fn grouped_and_nested_imports_are_read_and_comments_are_not() {
    let text = "use crate::{config::{A, B}, backend};\nlet x = crate::gateway::Gateway::new();\n/// see crate::cli";
    let names: Vec<String> = references(&code_of(text), "crate::").into_iter().collect();
    assert_eq!(names, ["backend", "config", "gateway"]);
}

#[test]
fn the_layout_is_read_by_floor() {
    let lib = "//! # Layout\n//! Floor 2, above:\n//! - [`b`]: b.\n//!   more about b\n//! Floor 1:\n//! - `a`: a.\n";
    let floors = layout(lib);
    assert_eq!(floors, BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 2)]));
}

#[test]
fn a_cycle_is_found_and_a_chain_is_not() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert!(cycles(&graph(&[("a", "b"), ("b", "c")])).is_empty());
    let found = cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]));
    assert_eq!(found.into_iter().collect::<Vec<_>>(), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
}
