//! Prompt templates, shared by the evaluation engine and the runtime:
//! Jinja2-compatible (minijinja, by Jinja2's author), rendered with the
//! caller's variables. A variable that is not given is an error, not a
//! silent blank; fuel bounds runaway templates.

use serde_json::{Map, Value};

/// The template inside a prompt artifact: promptops YAML (`template` or
/// `prompt.template`), otherwise the whole text (a Markdown or text prompt).
pub fn template_text(content: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Inner {
        template: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct PromptOps {
        template: Option<String>,
        prompt: Option<Inner>,
    }
    if let Ok(p) = crate::yaml::from_str::<PromptOps>(content)
        && let Some(t) = p.template.or(p.prompt.and_then(|i| i.template))
    {
        return t;
    }
    content.to_string()
}

/// The most a rendered prompt may hold (far beyond any model's context).
const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// The render's output, refusing to grow past [`MAX_OUTPUT`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_OUTPUT {
            self.0
                .extend_from_slice(&buf[..(MAX_OUTPUT + 1 - self.0.len()).min(buf.len())]);
            return Err(std::io::Error::other("the rendered prompt is too large"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn render(template: &str, vars: &Map<String, Value>) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_fuel(Some(200_000));
    let tmpl = env
        .template_from_str(template)
        .map_err(|e| format!("prompt template error: {e}"))?;
    let mut out = Capped(Vec::new());
    tmpl.render_captured_to(minijinja::Value::from(minijinja::value::Serde(vars)), &mut out)
        .map(|_| String::from_utf8_lossy(&out.0).into_owned())
        .map_err(|e| {
            if out.0.len() > MAX_OUTPUT {
                return format!(
                    "cannot render the prompt: its output is over {MAX_OUTPUT} bytes; a prompt that large is a template bug"
                );
            }
            // Name what is missing: the engine's message gives only a line.
            if e.kind() == minijinja::ErrorKind::UndefinedError {
                let mut missing: Vec<String> = tmpl
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| !vars.contains_key(v))
                    .collect();
                missing.sort();
                if !missing.is_empty() {
                    return format!(
                        "cannot render the prompt: missing variable{} {} ({e}); pass {}",
                        if missing.len() == 1 { "" } else { "s" },
                        missing.join(", "),
                        missing
                            .iter()
                            .map(|m| format!("{m}=..."))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            format!("cannot render the prompt: {e}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promptops_yaml_and_plain_text() {
        let y = "prompt:\n  id: x\n  template: 'Hi {{ user_name }}'\n";
        assert_eq!(template_text(y), "Hi {{ user_name }}");
        assert_eq!(template_text("Plain {{ a }}"), "Plain {{ a }}");
        let mut vars = Map::new();
        vars.insert("user_name".into(), Value::from("Ann"));
        assert!(
            render("Hi {{ user_name }}{% if vip %}!{% endif %}", &vars)
                .unwrap_err()
                .contains("vip")
        );
        assert_eq!(
            render("Hi {{ user_name | upper }}", &vars).unwrap(),
            "Hi ANN"
        );
        assert!(render("{% for i in range(100000000) %}x{% endfor %}", &vars).is_err());
        let e = render("Hi {{ user_name }}, {{ tier }} and {{ limit }}", &vars).unwrap_err();
        assert!(e.contains("missing variables limit, tier"), "{e}");
        let e = render(
            "{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}",
            &vars,
        )
        .unwrap_err();
        assert!(e.contains("over 16777216 bytes"), "{e}");
    }
}
