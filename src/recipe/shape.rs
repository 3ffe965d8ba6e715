//! The recipe's shape: every mapping a recipe has, the keys each one takes and what kind of
//! value each key holds. The reader checks each mapping against its [`Section`] (unknown keys
//! are refused, with the nearest one suggested), and [`json_schema`] writes the JSON Schema
//! editors use from the same sections — so the schema cannot list a key the reader refuses
//! or miss one it takes. What a value may say beyond its kind (a path is absolute, a mode is
//! octal, a package name is well formed) is the reader's, told with file:line.

use serde_json::{Map, Value, json};

/// One mapping of a recipe: the recipe itself, a file, a user, a test, …
pub struct Section {
    /// The name of its definition in the schema.
    pub id: &'static str,
    /// How messages name it: "a file", "`base.debian`".
    pub what: &'static str,
    pub doc: &'static str,
    pub fields: &'static [Field],
}

pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    /// Always needed (keys needed only with others, like a file's `to`, are not marked).
    pub required: bool,
    pub doc: &'static str,
}

/// What a key's value is. Every scalar is read as text, so `8080`, `true` and `"8080"` are
/// all text where text is asked for.
pub enum Kind {
    /// A scalar; `{var}` may be used in it.
    Text,
    /// A whole number (a scalar of digits).
    Whole,
    /// `true` or `false`.
    Flag,
    /// One of these words.
    Word(&'static [&'static str]),
    /// A list; one scalar counts as a list of one where the items are scalars.
    List(&'static Kind),
    /// An argument list: a list, never a string (which would be one argument).
    Argv,
    /// A mapping of names to scalars.
    TextMap,
    /// A mapping of names to scalars or `~` (no default).
    Variables,
    /// A value, or a mapping of architecture to value.
    PerArch(&'static Kind),
    /// A mapping of the given section.
    Map(&'static Section),
    /// Any of these.
    Either(&'static [Kind]),
    /// Anything (the key's presence is what counts).
    Any,
}

impl Section {
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().map(|f| f.name)
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

const fn field(name: &'static str, kind: Kind, doc: &'static str) -> Field {
    Field { name, kind, required: false, doc }
}

const fn needed(name: &'static str, kind: Kind, doc: &'static str) -> Field {
    Field { name, kind, required: true, doc }
}

const TEXTS: Kind = Kind::List(&Kind::Text);
const MODE: Field = field("mode", Kind::Text, "Octal permissions, quoted: \"0644\", \"0755\", \"4755\".");
const OWNER: Field =
    field("owner", Kind::Text, "`user`, `user:group`, `uid` or `uid:gid` (names from the image's accounts).");
const ARCHIVES: &[&str] = &["tar", "tar.gz", "tgz", "tar.xz", "txz", "tar.zst", "tzst", "zip"];

// The fields a layer and `config` share. Kinds that point at a section are statics here,
// so the constants can refer to them.
static FILE_ITEM: Kind = Kind::Map(&FILE);
static TREE_ITEM: Kind = Kind::Either(&[Kind::Text, Kind::Map(&TREE)]);
static TREE_KINDS: [Kind; 3] = [Kind::Text, Kind::Map(&TREE), Kind::List(&TREE_ITEM)];
static SYMLINK_ITEM: Kind = Kind::Map(&SYMLINK);
static SYMLINK_KINDS: [Kind; 2] = [Kind::TextMap, Kind::List(&SYMLINK_ITEM)];
static DIR_ITEM: Kind = Kind::Either(&[Kind::Text, Kind::Map(&DIR)]);

const FILES: Field = field("files", Kind::List(&FILE_ITEM), "Local files, pinned downloads and archives to unpack.");
const TREES: Field = field(
    "tree",
    Kind::Either(&TREE_KINDS),
    "Local directories copied whole: a path, `{path, to, owner}`, or a list of them.",
);
const SYMLINKS: Field =
    field("symlinks", Kind::Either(&SYMLINK_KINDS), "Symbolic links: `{/link: target}` or a list of `{path, target}`.");
const DIRS: Field = field("dirs", Kind::List(&DIR_ITEM), "Directories: an absolute path or `{path, mode, owner}`.");

pub static RECIPE: Section = Section {
    id: "recipe",
    what: "the recipe",
    doc: "An assemble recipe: what goes into an image's base, application and configuration layers.",
    fields: &[
        needed("name", Kind::Text, "The repository name: lowercase letters, digits, `.`, `_`, `-`, `/`."),
        field("context", Kind::Text, "The build context local files must lie in (default: the recipe's directory)."),
        field(
            "archs",
            TEXTS,
            "Architectures to build: amd64, arm64, arm/v7, arm/v6, 386, ppc64le, s390x, riscv64 (default [amd64]).",
        ),
        field(
            "tags",
            Kind::List(&Kind::Either(&[Kind::Text, Kind::Map(&TAG)])),
            "Tags (default [latest]); an item may be `{tag, variables}`.",
        ),
        field(
            "variants",
            Kind::List(&Kind::Map(&VARIANT)),
            "Variants: each repeats every tag with its suffix and its own variables.",
        ),
        field("registry", Kind::Text, "REGISTRY[/NAMESPACE] that `assemble push` publishes to."),
        field(
            "variables",
            Kind::Variables,
            "Variables for `{name}` in strings and `{{ name }}` in templates; `~` means `--var` must give it.",
        ),
        field(
            "epoch",
            Kind::Whole,
            "The time every file and the image carry, in seconds since 1970 (SOURCE_DATE_EPOCH overrides).",
        ),
        field(
            "compression",
            Kind::Either(&[Kind::Word(&["gzip", "zstd"]), Kind::Map(&COMPRESSION)]),
            "Layer compression: gzip (level 6), zstd (level 3), or `{algorithm, level}`.",
        ),
        field(
            "unpack_limit",
            Kind::Text,
            "The most one archive or package may expand to, such as `8 GiB` (default 4 GiB).",
        ),
        field("metadata", Kind::Map(&METADATA), "`org.opencontainers.image.*` annotations and labels."),
        field("annotations", Kind::TextMap, "Further annotations of the index and each manifest."),
        field(
            "base",
            Kind::Either(&[Kind::Word(&["scratch"]), Kind::Map(&BASE)]),
            "What the image starts from: scratch, a Debian archive, Alpine repositories, an image or another recipe.",
        ),
        field("layers", Kind::List(&Kind::Map(&LAYER)), "Application layers, in order."),
        field("config", Kind::Map(&CONFIG), "The configuration layer (always last) and the image's runtime settings."),
        field("tests", Kind::List(&Kind::Map(&TEST)), "Checks `assemble test` runs against the built image."),
    ],
};

pub static TAG: Section = Section {
    id: "tag",
    what: "a tag",
    doc: "A tag with variables of its own.",
    fields: &[
        needed("tag", Kind::Text, "The tag."),
        field("variables", Kind::TextMap, "Variables this tag's image is built with."),
    ],
};

pub static VARIANT: Section = Section {
    id: "variant",
    what: "a variant",
    doc: "Another image from the same recipe, its tags suffixed.",
    fields: &[
        needed("name", Kind::Text, "The variant's name (`{variant}`)."),
        field("suffix", Kind::Text, "Added to every tag (default `-NAME`)."),
        field("variables", Kind::TextMap, "Variables this variant is built with."),
    ],
};

pub static COMPRESSION: Section = Section {
    id: "compression",
    what: "`compression`",
    doc: "A compressor and its level.",
    fields: &[
        needed("algorithm", Kind::Word(&["gzip", "zstd"]), "gzip or zstd."),
        field("level", Kind::Whole, "1–9 for gzip, 1–19 for zstd."),
    ],
};

pub static METADATA: Section = Section {
    id: "metadata",
    what: "`metadata`",
    doc: "Written as `org.opencontainers.image.KEY` annotations and config labels.",
    fields: &[
        field("title", Kind::Text, "Human-readable title."),
        field("description", Kind::Text, "What the image is."),
        field("version", Kind::Text, "The packaged software's version."),
        field("source", Kind::Text, "URL of the source the image is built from."),
        field("revision", Kind::Text, "Source control revision."),
        field("url", Kind::Text, "Where to find more about the image."),
        field("documentation", Kind::Text, "URL of its documentation."),
        field("licenses", Kind::Text, "SPDX license expression."),
        field("vendor", Kind::Text, "Who distributes it."),
        field("authors", Kind::Text, "Who maintains it."),
    ],
};

pub static BASE: Section = Section {
    id: "base",
    what: "`base`",
    doc: "The base: one of `scratch`, `debian`, `alpine`, `image` or `recipe` (an image or recipe base may name `debian` or `alpine` as its package source).",
    fields: &[
        field("scratch", Kind::Any, "An empty base."),
        field("debian", Kind::Map(&DEBIAN), "Packages from a Debian-format archive."),
        field("alpine", Kind::Map(&ALPINE), "Packages from Alpine repositories."),
        field("image", Kind::Text, "A registry image, `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`."),
        field("recipe", Kind::Text, "Another recipe in this directory (its name, without `.yml`)."),
    ],
};

pub static DEBIAN: Section = Section {
    id: "debian",
    what: "`base.debian`",
    doc: "A Debian-format archive and the packages installed from it.",
    fields: &[
        needed("suite", Kind::Text, "The suite, such as bookworm."),
        field("suites", TEXTS, "Further suites, such as bookworm-updates."),
        field("components", TEXTS, "Components (default [main])."),
        field(
            "mirror",
            Kind::PerArch(&Kind::Text),
            "The archive's URL (default: the machine's apt mirror or ASSEMBLE_DEBIAN_MIRROR), or one per architecture.",
        ),
        field(
            "sources",
            Kind::List(&Kind::Map(&DEBIAN_SOURCE)),
            "Further Debian-format archives (a third-party repository, say), each with its own key and apt pin priority.",
        ),
        field("packages", TEXTS, "Packages installed with their dependencies."),
        field("essential", Kind::Flag, "Install the Essential set, as debootstrap does (default false)."),
        field("recommends", Kind::Flag, "Install Recommends too (default false)."),
        field("keyring", TEXTS, "OpenPGP keyrings the archive's Release is checked with (default: Debian's)."),
        field("check_valid_until", Kind::Flag, "Refuse a Release past its Valid-Until (default true)."),
        field("merged_usr", Kind::Flag, "/bin, /sbin, /lib as links into /usr (default true)."),
        field("alternatives", Kind::TextMap, "`update-alternatives` choices: name → path."),
    ],
};

pub static DEBIAN_SOURCE: Section = Section {
    id: "debian_source",
    what: "a Debian source",
    doc: "Another Debian-format archive beside the main one, with its own OpenPGP key and apt's pin priorities.",
    fields: &[
        needed("mirror", Kind::PerArch(&Kind::Text), "The archive's URL, or one per architecture."),
        needed("suite", Kind::Text, "Its suite."),
        field("suites", TEXTS, "Further suites."),
        field("components", TEXTS, "Components (default [main])."),
        needed("keyring", TEXTS, "The OpenPGP keyrings its Release is signed by (files beside the recipe)."),
        field(
            "priority",
            Kind::Text,
            "apt's pin priority for its packages (default 500, the main archive's; 100 like backports: only when asked for or nothing else has it).",
        ),
        field(
            "packages",
            TEXTS,
            "Packages (`*` wildcards) taken from this archive whatever the others offer (apt's pin 990).",
        ),
    ],
};

pub static ALPINE: Section = Section {
    id: "alpine",
    what: "`base.alpine`",
    doc: "Alpine repositories and the packages installed from them.",
    fields: &[
        needed("repositories", TEXTS, "Repository URLs; `@tag URL` for a tagged repository."),
        needed("keys", TEXTS, "The repositories' RSA public keys (files beside the recipe)."),
        field("packages", TEXTS, "Packages installed with their dependencies."),
    ],
};

pub static LAYER: Section = Section {
    id: "layer",
    what: "a layer",
    doc: "An application layer.",
    fields: &[
        field("name", Kind::Text, "The layer's name (default layer-N; `base` and `config` are reserved)."),
        field("packages", TEXTS, "Packages from the base's package source."),
        FILES,
        TREES,
        SYMLINKS,
        DIRS,
    ],
};

pub static FILE: Section = Section {
    id: "file",
    what: "a file",
    doc: "A local file (`path`), a pinned download (`url` + `sha256`) or a path out of a registry image (`image` + `path`), placed at `to` or unpacked with `extract`.",
    fields: &[
        field(
            "path",
            Kind::PerArch(&Kind::Text),
            "A local file or directory, relative to the recipe (or one per architecture); with `image`, an absolute path in that image.",
        ),
        field(
            "image",
            Kind::Text,
            "A registry image, `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`, whose file or directory `path` is taken (pinned by digest in the lock).",
        ),
        field(
            "platform",
            Kind::Text,
            "With `image`: take the path from this platform's image for every architecture (default: the architecture being built).",
        ),
        field("url", Kind::PerArch(&Kind::Text), "An https:// or http:// download (or one per architecture)."),
        field("sha256", Kind::PerArch(&Kind::Text), "The download's SHA-256, 64 hex digits (or one per architecture)."),
        field("to", Kind::Text, "Where it goes in the image (a path ending in `/` keeps the file's name)."),
        MODE,
        OWNER,
        field(
            "extract",
            Kind::Either(&[Kind::Flag, Kind::Word(ARCHIVES)]),
            "Unpack the archive: true (by its name or bytes), or its type.",
        ),
        field("strip_components", Kind::Whole, "Leading path components dropped when unpacking."),
        field(
            "releases",
            Kind::Map(&RELEASES),
            "With `url`: where new versions are announced, for `assemble outdated` and `assemble lock --upgrade`.",
        ),
    ],
};

pub static RELEASES: Section = Section {
    id: "releases",
    what: "`releases`",
    doc: "Where a pinned download's new versions are announced: a GitHub-releases-style API (`github`) or a page that lists them (`listing`).",
    fields: &[
        field("github", Kind::Text, "`OWNER/REPO` of a GitHub-releases-style JSON API."),
        field("api", Kind::Text, "The API's base URL (default https://api.github.com)."),
        field(
            "listing",
            Kind::Text,
            "An https:// or http:// page that names every version (an HTML index, a text file).",
        ),
        needed(
            "pattern",
            Kind::PerArch(&Kind::Text),
            "The asset name (github) or the text in the listing, `{version}` where the version goes (or one per architecture).",
        ),
        needed("version", Kind::Text, "The recipe variable that holds the version pinned now."),
    ],
};

pub static TREE: Section = Section {
    id: "tree",
    what: "a tree",
    doc: "A local directory copied whole.",
    fields: &[
        needed("path", Kind::Text, "The directory, relative to the recipe."),
        field("to", Kind::Text, "Where its contents go (default /)."),
        OWNER,
    ],
};

pub static SYMLINK: Section = Section {
    id: "symlink",
    what: "a symlink",
    doc: "A symbolic link.",
    fields: &[
        needed("path", Kind::Text, "The link, an absolute path."),
        needed("target", Kind::Text, "What it points to."),
    ],
};

pub static DIR: Section = Section {
    id: "dir",
    what: "a directory",
    doc: "A directory.",
    fields: &[needed("path", Kind::Text, "An absolute path."), MODE, OWNER],
};

pub static CONFIG: Section = Section {
    id: "config",
    what: "`config`",
    doc: "The configuration layer's content and the image's runtime settings.",
    fields: &[
        FILES,
        TREES,
        SYMLINKS,
        DIRS,
        field("templates", Kind::List(&Kind::Map(&TEMPLATE)), "Files rendered with the recipe's variables."),
        field(
            "secrets",
            Kind::List(&Kind::Map(&SECRET)),
            "Values from the environment or a file, never logged or locked.",
        ),
        field("groups", Kind::List(&Kind::Map(&GROUP)), "Groups added to /etc/group."),
        field("users", Kind::List(&Kind::Map(&USER)), "Users added to /etc/passwd and /etc/shadow."),
        field("user", Kind::Text, "The user the container runs as (a name or uid[:gid])."),
        field("entrypoint", Kind::Argv, "The entrypoint, one item per argument."),
        field("cmd", Kind::Argv, "The command, one item per argument."),
        field("env", Kind::TextMap, "Environment variables."),
        field("workdir", Kind::Text, "The working directory, an absolute path."),
        field("ports", TEXTS, "Exposed ports: 80, 80/tcp, 53/udp."),
        field("volumes", TEXTS, "Volumes, absolute paths."),
        field("labels", Kind::TextMap, "Config labels (beside those `metadata` gives)."),
        field("stop_signal", Kind::Text, "SIGTERM, SIGQUIT, … or a number."),
        field("healthcheck", Kind::Map(&HEALTHCHECK), "Docker's health check."),
    ],
};

pub static TEMPLATE: Section = Section {
    id: "template",
    what: "a template",
    doc: "A file rendered with the recipe's variables (`{{ name }}`).",
    fields: &[
        needed("src", Kind::Text, "The template, relative to the recipe."),
        needed("to", Kind::Text, "Where the rendered file goes."),
        MODE,
        OWNER,
    ],
};

pub static SECRET: Section = Section {
    id: "secret",
    what: "a secret",
    doc: "A value from an environment variable (`env`) or a local file (`file`).",
    fields: &[
        field("env", Kind::Text, "The environment variable holding it."),
        field("file", Kind::Text, "The local file holding it."),
        needed("to", Kind::Text, "Where it goes in the image."),
        field("mode", Kind::Text, "Octal permissions (default \"0400\")."),
        OWNER,
    ],
};

pub static GROUP: Section = Section {
    id: "group",
    what: "a group",
    doc: "A group.",
    fields: &[
        needed("name", Kind::Text, "The group's name."),
        needed("gid", Kind::Whole, "Its id."),
        field("members", TEXTS, "Its members."),
    ],
};

pub static USER: Section = Section {
    id: "user",
    what: "a user",
    doc: "A user (password locked).",
    fields: &[
        needed("name", Kind::Text, "The user's name."),
        needed("uid", Kind::Whole, "Its id."),
        field("group", Kind::Text, "Its primary group, by name or gid."),
        field("groups", TEXTS, "Further groups."),
        field("home", Kind::Text, "Its home directory."),
        field("shell", Kind::Text, "Its shell."),
        field("gecos", Kind::Text, "Its comment field."),
    ],
};

pub static HEALTHCHECK: Section = Section {
    id: "healthcheck",
    what: "`healthcheck`",
    doc: "Docker's health check.",
    fields: &[
        needed("test", Kind::Argv, "[CMD, …], [CMD-SHELL, \"…\"] or [NONE]."),
        field("interval", Kind::Text, "A duration such as 30s or 1m30s."),
        field("timeout", Kind::Text, "A duration."),
        field("start_period", Kind::Text, "A duration."),
        field("start_interval", Kind::Text, "A duration."),
        field("retries", Kind::Whole, "Failures before unhealthy."),
    ],
};

pub static TEST: Section = Section {
    id: "test",
    what: "a test",
    doc: "One check: exactly one of `exists`, `absent`, `non_root`, `max_size`, `run`.",
    fields: &[
        field("name", Kind::Text, "What the report calls it."),
        field("exists", Kind::Text, "A path that must exist."),
        field("kind", Kind::Text, "With `exists`: what it must be: file, dir or symlink (variables may say it)."),
        MODE,
        field("owner", Kind::Text, "With `exists`: its owner (a name or uid)."),
        field("group", Kind::Text, "With `exists`: its group (a name or gid)."),
        field("contains", Kind::Text, "With `exists`: text the file holds."),
        field("absent", Kind::Text, "A path that must not exist."),
        field("non_root", Kind::Flag, "The image's user is set and is not root."),
        field("max_size", Kind::Text, "The most the platform's compressed layers may weigh, such as `80 MB`."),
        field("run", Kind::Argv, "A command run in the image, one item per argument."),
        field("exit", Kind::Whole, "With `run`: the exit status wanted (default 0)."),
        field("output", Kind::Text, "With `run`: text its output holds."),
        field("archs", TEXTS, "Only on these architectures."),
    ],
};

/// Every section, the recipe first.
pub static ALL: &[&Section] = &[
    &RECIPE,
    &TAG,
    &VARIANT,
    &COMPRESSION,
    &METADATA,
    &BASE,
    &DEBIAN,
    &ALPINE,
    &LAYER,
    &FILE,
    &RELEASES,
    &DEBIAN_SOURCE,
    &TREE,
    &SYMLINK,
    &DIR,
    &CONFIG,
    &TEMPLATE,
    &SECRET,
    &GROUP,
    &USER,
    &HEALTHCHECK,
    &TEST,
];

/// The JSON Schema (draft-07, which yaml-language-server and most editors read) of a recipe.
pub fn json_schema() -> Value {
    let mut definitions = Map::new();
    for s in ALL {
        definitions.insert(s.id.into(), section_schema(s));
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "assemble recipe",
        "description": RECIPE.doc,
        "$ref": "#/definitions/recipe",
        "definitions": definitions,
    })
}

fn section_schema(s: &Section) -> Value {
    let mut properties = Map::new();
    for f in s.fields {
        // A key given no value (`config:` alone) counts as absent, which a required one cannot be.
        let schema = if f.required {
            json!({"description": f.doc, "allOf": [kind_schema(&f.kind)]})
        } else {
            json!({"description": f.doc, "anyOf": [kind_schema(&f.kind), {"type": "null"}]})
        };
        properties.insert(f.name.into(), schema);
    }
    let required: Vec<&str> = s.fields.iter().filter(|f| f.required).map(|f| f.name).collect();
    let mut out =
        json!({"type": "object", "description": s.doc, "additionalProperties": false, "properties": properties});
    if !required.is_empty() {
        out["required"] = json!(required);
    }
    out
}

fn scalar() -> Value {
    json!({"type": ["string", "number", "boolean"]})
}

fn kind_schema(k: &Kind) -> Value {
    match k {
        Kind::Text => scalar(),
        Kind::Whole => json!({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+$"}]}),
        Kind::Flag => json!({"type": "boolean"}),
        Kind::Word(words) => json!({"enum": words}),
        Kind::List(item) => {
            // One scalar counts as a list of one; one mapping does not.
            let list = json!({"type": "array", "items": kind_schema(item)});
            match scalar_part(item) {
                Some(one) => json!({"anyOf": [list, one]}),
                None => list,
            }
        }
        Kind::Argv => json!({"type": "array", "items": scalar()}),
        Kind::TextMap => json!({"type": "object", "additionalProperties": scalar()}),
        Kind::Variables => {
            json!({"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}})
        }
        Kind::PerArch(one) => {
            json!({"anyOf": [kind_schema(one), {"type": "object", "additionalProperties": kind_schema(one)}]})
        }
        Kind::Map(s) => json!({"$ref": format!("#/definitions/{}", s.id)}),
        Kind::Either(kinds) => json!({"anyOf": kinds.iter().map(kind_schema).collect::<Vec<_>>()}),
        Kind::Any => json!({}),
    }
}

/// The scalar values of a kind (what one item standing for a list of one may be), if any.
fn scalar_part(k: &Kind) -> Option<Value> {
    match k {
        Kind::Text | Kind::Whole | Kind::Flag | Kind::Word(_) => Some(kind_schema(k)),
        Kind::Either(kinds) => {
            let parts: Vec<Value> = kinds.iter().filter_map(scalar_part).collect();
            match parts.len() {
                0 => None,
                1 => parts.into_iter().next(),
                _ => Some(json!({"anyOf": parts})),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_is_listed_once_and_every_reference_resolves() {
        let ids: Vec<&str> = ALL.iter().map(|s| s.id).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        let schema = json_schema().to_string();
        for r in schema.split("\"#/definitions/").skip(1) {
            let id = &r[..r.find('"').unwrap()];
            assert!(ids.contains(&id), "{id} is referenced but not defined");
        }
    }

    #[test]
    fn no_section_lists_a_key_twice() {
        for s in ALL {
            let mut names: Vec<&str> = s.names().collect();
            names.sort();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "{}", s.id);
        }
    }
}
