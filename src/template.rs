//! Template files of the configuration layer, rendered with Jinja syntax (minijinja):
//! `{{ DOMAIN }}`, `{% if LOG_LEVEL == "debug" %}…{% endif %}`, filters such as
//! `{{ name | upper }}`. Undefined variables are errors, never empty strings. The context
//! is the recipe's `variables` plus the built-ins (`name`, `arch`, `arch_uname`, `os`,
//! `variant`) and `tags` — never the build machine's environment.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
#[error("template `{path}`{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct Error {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

pub fn render(path: &str, source: &str, vars: &BTreeMap<String, String>, tags: &[String]) -> Result<String, Error> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("default delimiters are valid"),
    );
    let err = |e: minijinja::Error| Error {
        path: path.to_string(),
        line: e.line(),
        message: e.detail().map(str::to_string).unwrap_or_else(|| e.kind().to_string()),
    };
    env.add_template("t", source).map_err(err)?;
    let mut ctx: BTreeMap<String, minijinja::Value> =
        vars.iter().map(|(k, v)| (k.clone(), minijinja::Value::from(v.as_str()))).collect();
    ctx.insert("tags".into(), minijinja::Value::from(tags.to_vec()));
    env.get_template("t").expect("just added").render(ctx).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_refuses_undefined() {
        let vars = BTreeMap::from([("DOMAIN".to_string(), "example.org".to_string())]);
        assert_eq!(render("a", "server {{ DOMAIN }} {\n", &vars, &[]).unwrap(), "server example.org {\n");
        let e = render("a.conf", "x\n{{ NOPE }}\n", &vars, &[]).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().starts_with("template `a.conf` line 2:"), "{e}");
    }
}
