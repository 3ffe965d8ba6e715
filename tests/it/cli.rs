//! What a new user meets around the commands: `init`, shell completions, man pages, examples
//! in `--help`, and output that behaves in a pipe.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Stdio};

const COMMANDS: [&str; 19] = [
    "build",
    "lock",
    "inspect",
    "verify",
    "diff",
    "outdated",
    "push",
    "tags",
    "ship",
    "rollback",
    "graph",
    "test",
    "init",
    "completions",
    "man",
    "schema",
    "sbom",
    "provenance",
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

/// A recipe with one 48 MiB pinned download from a local server: long enough to be drawn.
fn download_recipe(t: &Path) -> HttpServer {
    let served = t.join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("big.bin"), noise(48 << 20, 7)).unwrap();
    let server = HttpServer::serve(&served);
    let sha = sha256_file(&served.join("big.bin"));
    std::fs::write(
        t.join("big.yml"),
        format!(
            "name: big\nlayers:\n  - files:\n      - {{url: \"{}\", sha256: \"{sha}\", to: /big.bin}}\n",
            server.url("big.bin")
        ),
    )
    .unwrap();
    server
}

/// The text a terminal would show, escape sequences left out, as the pieces between line
/// ends and carriage returns.
fn screen_pieces(raw: &str) -> Vec<String> {
    let mut text = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte
            if chars.next_if_eq(&'[').is_some() {
                for x in chars.by_ref() {
                    if ('@'..='~').contains(&x) {
                        break;
                    }
                }
            }
            continue;
        }
        text.push(c);
    }
    text.split(['\r', '\n']).map(|s| s.trim_end().to_string()).filter(|s| !s.is_empty()).collect()
}

/// On a terminal (a pty made by `script`) a download and the packing show bytes done of the
/// total and the rate, and log lines print whole above them; on a pipe nothing but the log
/// lines is written.
#[test]
fn progress_shows_bytes_and_rate_on_a_terminal_and_nothing_on_a_pipe() {
    require("script");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let _server = download_recipe(t);
    let cmd = format!(
        "{} --cache-dir {} build big.yml -o oci:out",
        env!("CARGO_BIN_EXE_assemble"),
        t.join("cache-tty").display()
    );
    let run = sh(t, &format!("script -qfec '{cmd}' typescript < /dev/null > /dev/null 2>&1; echo $?"));
    assert_eq!(run.stdout.trim(), "0", "{}", run.stderr);
    let raw = std::fs::read_to_string(t.join("typescript")).unwrap();
    let pieces = screen_pieces(&raw);
    let bytes = |phase: &str| {
        pieces.iter().any(|p| {
            let w: Vec<&str> = p.split_whitespace().collect();
            w.windows(8).any(|w| {
                w[0] == phase
                    && w[1].parse::<f64>().is_ok()
                    && w[3] == "of"
                    && w[4] == "48.00"
                    && w[5] == "MiB"
                    && w[6].parse::<f64>().is_ok()
                    && w[7].ends_with("B/s")
            })
        })
    };
    assert!(bytes("downloading"), "no `downloading N of 48.00 MiB RATE` line in {pieces:#?}");
    assert!(bytes("packing"), "no `packing N of 48.00 MiB RATE` line in {pieces:#?}");
    // The log line is whole, not drawn through by a bar.
    assert!(pieces.iter().any(|p| p == "downloading 1 file(s)"), "{pieces:#?}");
    assert!(pieces.iter().any(|p| p.starts_with("built big sha256:")), "{pieces:#?}");

    // On a pipe: the same log lines, and no progress at all.
    let run = assemble(t, &t.join("cache-pipe"), &["build", "big.yml", "-o", "oci:out2"], &[]).ok();
    assert!(!run.stderr.contains('\r') && !run.stderr.contains('\x1b'), "{:?}", run.stderr);
    assert!(!run.stderr.contains(" of 48.00 MiB"), "{}", run.stderr);
    assert!(run.stderr.lines().any(|l| l == "downloading 1 file(s)"), "{}", run.stderr);
}
