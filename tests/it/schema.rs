//! The recipes' JSON Schema (`assemble schema`, committed as docs/recipe.schema.json) checked
//! by an independent validator — Debian's python3-jsonschema, draft-07, over PyYAML — against
//! every recipe in the repository and every starter `init` writes; and recipes the reader
//! refuses for their shape are refused by the schema too.

use crate::common::*;
use std::path::{Path, PathBuf};

/// Validates each file against the schema; prints `ok PATH` or `bad PATH: MESSAGE` per file.
const VALIDATE: &str = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    doc = yaml.safe_load(open(path))
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        print("bad %s: %s at %s" % (path, e.message[:200], "/".join(str(p) for p in e.absolute_path)))
    else:
        print("ok %s" % path)
"#;

fn validate(dir: &Path, files: &[PathBuf]) -> Vec<String> {
    require("/usr/bin/python3");
    let schema = dir.join("schema.json");
    let run = assemble(dir, &dir.join("cache"), &["schema"], &[]).ok();
    std::fs::write(&schema, &run.stdout).unwrap();
    std::fs::write(dir.join("validate.py"), VALIDATE).unwrap();
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.arg(dir.join("validate.py")).arg(&schema).args(files);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "the validator failed (scripts/test installs python3-jsonschema and python3-yaml):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect()
}

#[test]
fn the_committed_schema_is_the_one_assemble_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let run = assemble(tmp.path(), &tmp.path().join("c"), &["schema"], &[]).ok();
    let committed = std::fs::read_to_string(repo().join("docs/recipe.schema.json")).unwrap();
    assert!(
        run.stdout == committed,
        "docs/recipe.schema.json is not what `assemble schema` prints: run `assemble schema > docs/recipe.schema.json`"
    );
    let v = run.json();
    assert_eq!(v["$schema"], "http://json-schema.org/draft-07/schema#");
    // Every key the reader takes at the top is in the schema, with a description.
    let top = &v["definitions"]["recipe"]["properties"];
    for key in ["name", "archs", "tags", "variants", "base", "layers", "config", "tests", "metadata"] {
        assert!(top[key]["description"].is_string(), "{key}");
    }
}

#[test]
fn every_recipe_and_starter_is_valid_against_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["recipes", "examples/webapp", "fixtures/golden"] {
        for e in std::fs::read_dir(repo().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yml") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 14, "{files:?}");
    for base in ["scratch", "debian", "alpine", "image"] {
        let name = format!("starter-{base}");
        assemble(tmp.path(), &tmp.path().join("cache"), &["init", &name, "--base", base], &[]).ok();
        files.push(tmp.path().join(format!("{name}.yml")));
    }
    // Forms the reader takes that a narrower schema would refuse: short archive names, a
    // test's `kind` from a variable, one scalar for a list.
    let forms = tmp.path().join("forms.yml");
    std::fs::write(
        &forms,
        "name: forms\nvariables: {k: file}\ntags: latest\nlayers:\n  - files:\n      - {path: a.tgz, extract: tgz, to: /opt/}\n    dirs: /data\ntests:\n  - {exists: /data, kind: \"{k}\"}\n",
    )
    .unwrap();
    assemble(tmp.path(), &tmp.path().join("cache"), &["tags", forms.to_str().unwrap()], &[]).ok();
    files.push(forms);
    files.sort();
    let lines = validate(tmp.path(), &files);
    let bad: Vec<&String> = lines.iter().filter(|l| !l.starts_with("ok ")).collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(lines.len(), files.len());
}

/// Recipes whose shape is wrong — a misspelt key, a string where a list of arguments goes, a
/// mapping where a list goes, a required key missing, an unknown word — are refused by both
/// the reader (exit 1, file:line) and the schema.
#[test]
fn the_schema_refuses_what_the_reader_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let cases = [
        ("misspelt-key", "config:\n  entrypont: [/bin/app]\n", "unknown field `entrypont` in `config`"),
        ("argv-string", "config:\n  entrypoint: /bin/app --serve\n", "must be a list, one item per argument"),
        ("map-for-list", "archs: {amd64: yes}\n", "`archs` must be a list, found a mapping"),
        ("missing-suite", "base:\n  debian: {packages: [curl]}\n", "`base.debian` needs a `suite` field"),
        ("unknown-word", "compression: {algorithm: brotli}\n", "unknown compression `brotli`"),
        ("bad-test-key", "tests:\n  - {exists: /x, kidn: file}\n", "unknown field `kidn` in a test"),
        ("one-mapping-for-a-list", "tags: {tag: \"1.0\"}\n", "`tags` must be a list, found a mapping"),
        ("required-left-empty", "config:\n  users: [{name: app, uid: }]\n", "a user needs a `uid` field"),
        (
            "source-misspelt-key",
            "base:\n  debian:\n    suite: bookworm\n    sources: [{mirror: \"https://x.invalid/d\", suite: s, keyrnig: k.gpg}]\n",
            "unknown field `keyrnig` in a Debian source",
        ),
        (
            "releases-without-pattern",
            "variables: {v: \"1.0\"}\nlayers:\n  - name: a\n    files:\n      - {url: \"https://x.invalid/t\", sha256: \"0000000000000000000000000000000000000000000000000000000000000000\", to: /t, releases: {github: a/b, version: v}}\n",
            "`releases` needs a `pattern` field",
        ),
    ];
    let mut files = Vec::new();
    for (name, body, message) in cases {
        let path = t.join(format!("{name}.yml"));
        std::fs::write(&path, format!("name: {name}\n{body}")).unwrap();
        let run = assemble(t, &t.join("cache"), &["build", path.to_str().unwrap()], &[]);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{name}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("{name}.yml:")), "{name}: no file:line in {}", run.stderr);
        files.push(path);
    }
    let lines = validate(t, &files);
    for (line, (name, _, _)) in lines.iter().zip(cases) {
        assert!(line.starts_with(&format!("bad {}", t.join(name).display())), "{name}: the schema accepts it: {line}");
    }
    assert_eq!(lines.len(), cases.len());
}
