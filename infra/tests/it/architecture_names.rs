//! ARCHITECTURE.md names only what exists: every path in backticks is a file or folder of the
//! repository, and every code name in backticks (`Issuer`, `payments::issuer`,
//! `Events::reserve`) is, segment by segment, a module, file or definition of the workspace's
//! Rust sources. A rename that leaves the map behind fails here.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every name the sources define: modules (files and folders), items, enum variants.
fn defined_names() -> HashSet<String> {
    let mut files = Vec::new();
    for dir in ["shared/src", "edge/src", "lambdas/src", "infra/src", "infra/conformance/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut names = HashSet::new();
    let keywords = ["fn", "struct", "enum", "trait", "type", "const", "static", "mod", "macro_rules!"];
    for file in &files {
        for part in file.strip_prefix(root()).unwrap().iter() {
            names.insert(part.to_string_lossy().trim_end_matches(".rs").to_string());
        }
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            let words: Vec<&str> = line
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!'))
                .filter(|w| !w.is_empty())
                .collect();
            for pair in words.windows(2) {
                if keywords.contains(&pair[0]) {
                    names.insert(pair[1].to_string());
                }
            }
            // An enum variant or a field: `Name,` `Name(` `Name {` at the start of a line.
            let trimmed = line.trim_start();
            let ident: String = trimmed.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !ident.is_empty() && trimmed[ident.len()..].trim_start().starts_with(['(', '{', ',', ':']) {
                names.insert(ident);
            }
        }
    }
    names
}

fn is_code_name(token: &str) -> bool {
    let segments: Vec<&str> = token.split("::").collect();
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !segments.iter().all(|s| ident(s)) {
        return false;
    }
    // A single word counts when it is a type's name (CamelCase); lower-case single words are
    // attribute names and such
    // (all capitals are the store's key literals, not code).
    segments.len() > 1
        || (token.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && token.chars().any(|c| c.is_ascii_lowercase())
            && token.len() > 3)
}

#[test]
fn every_name_architecture_md_cites_exists() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let names = defined_names();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (i, token) in doc.split('`').enumerate() {
        if i % 2 == 0 || token.contains(' ') {
            continue;
        }
        let path_like = ["shared/", "edge/", "lambdas/", "infra/", "docs/"].iter().any(|p| token.starts_with(p));
        if path_like {
            // `lambdas/src/<service>`: the folder before the placeholder.
            let concrete = token.split('<').next().unwrap();
            let path = root().join(concrete.trim_end_matches('/'));
            checked += 1;
            if !path.exists() {
                missing.push(format!("path {token}"));
            }
        } else if is_code_name(token) {
            // `Route::Claim`, `payments::issuer::Issuer`, `Edge::respond`: each segment.
            checked += 1;
            for segment in token.split("::") {
                if !names.contains(segment) {
                    missing.push(format!("{segment} (in {token})"));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} names checked: is the extraction broken?");
    assert!(missing.is_empty(), "ARCHITECTURE.md cites what the code does not have:\n{}", missing.join("\n"));
}

#[test]
fn the_check_refuses_a_name_that_does_not_exist() {
    let names = defined_names();
    assert!(names.contains("Issuer") && names.contains("payments") && names.contains("respond"));
    assert!(!names.contains("PersonalPrices"), "a name the code does not define");
}
