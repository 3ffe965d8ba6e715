//! What a new user meets around the commands: `init`, shell completions, man pages, examples
//! in `--help`, and output that behaves in a pipe.

use crate::common::*;
use std::process::{Command, Stdio};

const COMMANDS: [&str; 16] = [
    "build",
    "lock",
    "inspect",
    "verify",
    "diff",
    "outdated",
    "push",
    "tags",
    "ship",
    "graph",
    "test",
    "init",
    "completions",
    "man",
    "schema",
    "help",
];

#[test]
fn init_writes_a_starter_recipe_for_each_base_and_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let cache = t.join("cache");
    for base in ["scratch", "debian", "alpine", "image"] {
        let name = format!("my-{base}");
        let run = assemble(t, &cache, &["init", &name, "--base", base], &[]).ok();
        assert_eq!(run.stdout, format!("wrote {name}.yml\n"));
        let text = std::fs::read_to_string(t.join(format!("{name}.yml"))).unwrap();
        assert!(text.starts_with(&format!("# {name}: a starter recipe made by `assemble init`.\n")), "{text}");
        // Every starter reads as a recipe.
        assert_eq!(assemble(t, &cache, &["graph", &format!("{name}.yml")], &[]).ok().stdout, format!("1. {name}\n"));
    }
    // The scratch one builds offline and passes its own tests.
    assemble(t, &cache, &["build", "my-scratch.yml"], &[]).ok();
    let tested = assemble(t, &cache, &["--json", "test", "--strict", "my-scratch.yml"], &[]).ok().json();
    assert_eq!(tested.as_array().unwrap().len(), 4, "{tested}");

    let again = assemble(t, &cache, &["init", "my-scratch", "--base", "debian"], &[]);
    assert_eq!(again.code, 1);
    assert_eq!(
        again.stderr,
        "error: `my-scratch.yml` exists already; init never overwrites a file (choose another name, or move it away)\n"
    );
    assert!(std::fs::read_to_string(t.join("my-scratch.yml")).unwrap().contains("base: scratch"), "unchanged");
    let bad = assemble(t, &cache, &["init", "Web App"], &[]);
    assert_eq!(bad.code, 1);
    assert_eq!(
        bad.stderr,
        "error: `Web App` is not a recipe name: lowercase letters, digits, `.`, `_`, `-` and `/`, starting with a letter or digit\n"
    );
}

#[test]
fn every_command_has_examples_in_its_help() {
    let tmp = tempfile::tempdir().unwrap();
    for command in COMMANDS.iter().filter(|c| **c != "help") {
        let run = assemble(tmp.path(), &tmp.path().join("c"), &[command, "--help"], &[]).ok();
        let examples = run
            .stdout
            .split_once("\nExamples:\n")
            .map(|(_, e)| e)
            .unwrap_or_else(|| panic!("{command}: {}", run.stdout));
        assert!(
            examples.lines().all(|l| l.starts_with("  ")) && examples.contains(&format!("assemble {command}")),
            "{command}: {examples}"
        );
    }
}

#[test]
fn completions_load_in_bash_and_name_every_command() {
    require("bash");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = assemble(t, &t.join("c"), &["completions", shell], &[]).ok().stdout;
        for command in COMMANDS {
            assert!(script.contains(command), "{shell}: no `{command}`");
        }
    }
    let script = assemble(t, &t.join("c"), &["completions", "bash"], &[]).ok().stdout;
    std::fs::write(t.join("assemble.bash"), script).unwrap();
    let loaded = sh(t, "bash -c 'source ./assemble.bash && complete -p assemble'");
    assert_eq!(loaded.code, 0, "{}", loaded.stderr);
    assert!(loaded.stdout.contains("_assemble"), "{}", loaded.stdout);
}

#[test]
fn man_pages_for_the_program_and_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let top = assemble(t, &t.join("c"), &["man"], &[]).ok().stdout;
    assert!(top.contains(".TH assemble 1"), "{top}");
    let listed = assemble(t, &t.join("c"), &["man", "pages"], &[]).ok().stdout;
    assert_eq!(listed.lines().count(), COMMANDS.len(), "{listed}");
    for command in COMMANDS.iter().filter(|c| **c != "help") {
        let page = std::fs::read_to_string(t.join(format!("pages/assemble-{command}.1"))).unwrap();
        assert!(page.contains(&format!(".TH assemble-{command} 1")), "{command}");
        assert!(page.contains("Examples:"), "{command}: the examples are in the page too");
    }
}

/// A reader that goes away (`assemble … | head`) ends the command with success, quietly.
#[test]
fn a_closed_pipe_on_stdout_is_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_assemble"))
        .current_dir(tmp.path())
        .args(["completions", "bash"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// Keys of `--json` output that are not snake_case (data copied from an image's config is
/// left as the image has it).
fn not_snake(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if !k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                    out.push(format!("{path}.{k}"));
                }
                if !matches!(k.as_str(), "run_config" | "annotations" | "labels") {
                    not_snake(v, &format!("{path}.{k}"), out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| not_snake(v, path, out)),
        _ => {}
    }
}

/// Every `--json` output is one JSON document on stdout, a list where it lists things, with
/// snake_case keys; an error under `--json` is a JSON object on stderr.
#[test]
fn json_output_is_one_document_with_one_key_style_and_errors_are_json_too() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let cache = t.join("cache");
    let hello = repo().join("recipes/hello.yml");
    let hello = hello.to_str().unwrap();
    let outputs = [
        vec!["--json", "build", hello, "-o", "oci:a"],
        vec!["--json", "lock", hello],
        vec!["--json", "inspect", "oci:a"],
        vec!["--json", "diff", "oci:a", "oci:a"],
        vec!["--json", "verify", hello],
        vec!["--json", "graph", hello],
        vec!["--json", "tags", hello],
        vec!["--json", "test", hello],
        vec!["--json", "init", "new"],
    ];
    for args in &outputs {
        let run = assemble(t, &cache, args, &[]).ok();
        let v: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", run.stdout));
        let mut bad = Vec::new();
        not_snake(&v, "", &mut bad);
        assert!(bad.is_empty(), "{args:?}: {bad:?}");
        if ["build", "lock", "verify", "graph", "test", "diff"].contains(&args[1]) {
            assert!(v.is_array(), "{args:?} lists: {v}");
        }
    }
    let failed = assemble(t, &cache, &["--json", "inspect", "oci:nowhere"], &[]);
    assert_eq!(failed.code, 1);
    assert_eq!(failed.stdout, "");
    let e: serde_json::Value =
        serde_json::from_str(failed.stderr.trim()).unwrap_or_else(|e| panic!("{e}: {}", failed.stderr));
    assert!(e["error"].as_str().unwrap().contains("nowhere"), "{e}");
    assert_eq!(e["exit"], 1);
}
