//! Context templates: the names a problem is dressed in, loaded from TOML files.
//!
//! A template has *locations* (layer 0, in groups of at most 5) and *items* (layer 1, in groups
//! of at most 5) plus the category word its location totals count ("adult animals"). One problem
//! draws its locations from one location group and its items from one item group. The three
//! templates of the paper are built in (`templates/*.toml` embedded at compile time); users add
//! their own with `--templates DIR` without touching code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest width of one layer of the world (SPEC §1: a template lists 5 names per sub-category).
pub const MAX_WIDTH: usize = 5;

/// The built-in templates, as (file name, TOML text).
pub const BUILTIN: [(&str, &str); 3] = [
    ("templates/zoo.toml", include_str!("../templates/zoo.toml")),
    (
        "templates/school.toml",
        include_str!("../templates/school.toml"),
    ),
    (
        "templates/festival.toml",
        include_str!("../templates/festival.toml"),
    ),
];

/// A loaded, validated context template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: String,
    pub description: String,
    /// What a location total counts: "adult animals", "schools", "movies".
    pub category: String,
    pub location_groups: Vec<Group>,
    pub item_groups: Vec<Group>,
}

/// A named group of at most [`MAX_WIDTH`] names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    id: String,
    #[serde(default)]
    description: String,
    category: String,
    location_groups: Vec<Group>,
    item_groups: Vec<Group>,
}

/// Why a template file could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{path}: cannot read template: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid template TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {problem}")]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
    },
    #[error("{path}: template id `{id}` is already defined by {first}")]
    Duplicate {
        path: PathBuf,
        id: String,
        first: PathBuf,
    },
    #[error("{dir}: no template files (*.toml) found")]
    EmptyDir { dir: PathBuf },
}

/// Words and characters a name may not contain, because the problem grammar uses them as
/// separators (`REF equals ...`, `the sum of A, B, and C`, `ITEM in LOCATION`, `Define NAME as L`,
/// `. `).
const FORBIDDEN_WORDS: [&str; 10] = [
    " in ",
    " as ",
    "define ",
    " and ",
    " equals ",
    " plus ",
    " times ",
    " exists",
    "the number of",
    "total number of",
];

impl Template {
    /// Parse and validate one template file's text; `path` is only used in messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Template, TemplateError> {
        let raw: RawTemplate = toml::from_str(text).map_err(|e| TemplateError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let invalid = |key: String, problem: String| TemplateError::Invalid {
            path: path.to_path_buf(),
            key,
            problem,
        };
        let id_ok = !raw.id.is_empty()
            && raw
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !id_ok {
            return Err(invalid(
                "id".into(),
                format!(
                    "`{}` must be non-empty lowercase ASCII letters, digits, '_' or '-'",
                    raw.id
                ),
            ));
        }
        check_name(&raw.category).map_err(|p| invalid("category".into(), p))?;
        for (field, groups) in [
            ("location_groups", &raw.location_groups),
            ("item_groups", &raw.item_groups),
        ] {
            if groups.is_empty() {
                return Err(invalid(field.into(), "needs at least one group".into()));
            }
            let mut seen = BTreeMap::new();
            for (gi, g) in groups.iter().enumerate() {
                let min = if field == "location_groups" { 1 } else { 2 };
                if g.names.len() < min || g.names.len() > MAX_WIDTH {
                    return Err(invalid(
                        format!("{field}[{gi}].names"),
                        format!(
                            "has {} names; a group needs {min} to {MAX_WIDTH}",
                            g.names.len()
                        ),
                    ));
                }
                for (ni, n) in g.names.iter().enumerate() {
                    let key = format!("{field}[{gi}].names[{ni}]");
                    check_name(n).map_err(|p| invalid(key.clone(), p))?;
                    if let Some(first) = seen.insert(n.as_str(), key.clone()) {
                        return Err(invalid(
                            key,
                            format!("duplicate name \"{n}\" (also at {first})"),
                        ));
                    }
                }
            }
        }
        Ok(Template {
            id: raw.id,
            description: raw.description,
            category: raw.category,
            location_groups: raw.location_groups,
            item_groups: raw.item_groups,
        })
    }
}

/// A name must be printable text the problem grammar can delimit unambiguously.
fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name is empty".into());
    }
    if name.trim() != name || name.contains("  ") {
        return Err(format!("\"{name}\" has leading, trailing or double spaces"));
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_ascii_digit() || matches!(c, '.' | ',' | ';' | '?' | '=' | '<' | '>') || c.is_control()
    }) {
        return Err(format!(
            "\"{name}\" contains '{c}', which the problem grammar uses"
        ));
    }
    let lower = format!(" {} ", name.to_lowercase());
    if let Some(w) = FORBIDDEN_WORDS.iter().find(|w| lower.contains(*w)) {
        return Err(format!(
            "\"{name}\" contains \"{}\", a word of the problem grammar",
            w.trim()
        ));
    }
    if name.chars().count() == 1 {
        return Err(format!(
            "\"{name}\" is a single character and would read as a trace variable"
        ));
    }
    Ok(())
}

/// The set of templates a run can use, by id, in a stable order.
#[derive(Debug, Clone)]
pub struct TemplateSet {
    templates: BTreeMap<String, (PathBuf, Template)>,
}

impl TemplateSet {
    /// The three built-in templates (zoo, school, festival).
    pub fn builtin() -> TemplateSet {
        let mut set = TemplateSet {
            templates: BTreeMap::new(),
        };
        for (path, text) in BUILTIN {
            let t = Template::from_toml(Path::new(path), text).expect("built-in template is valid");
            set.templates.insert(t.id.clone(), (PathBuf::from(path), t));
        }
        set
    }

    /// Built-ins plus every `*.toml` in `dir` (a file may not redefine an id).
    pub fn with_dir(dir: &Path) -> Result<TemplateSet, TemplateError> {
        let mut set = TemplateSet::builtin();
        let entries = std::fs::read_dir(dir).map_err(|source| TemplateError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(TemplateError::EmptyDir {
                dir: dir.to_path_buf(),
            });
        }
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| TemplateError::Io {
                path: path.clone(),
                source,
            })?;
            let t = Template::from_toml(&path, &text)?;
            if let Some((first, existing)) = set.templates.get(&t.id) {
                // Re-loading the repository's own templates/ directory is harmless.
                if *existing == t {
                    continue;
                }
                return Err(TemplateError::Duplicate {
                    path,
                    id: t.id,
                    first: first.clone(),
                });
            }
            set.templates.insert(t.id.clone(), (path, t));
        }
        Ok(set)
    }

    pub fn get(&self, id: &str) -> Option<&Template> {
        self.templates.get(id).map(|(_, t)| t)
    }

    /// Template ids in sorted order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(|s| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load() {
        let set = TemplateSet::builtin();
        assert_eq!(set.ids().collect::<Vec<_>>(), ["festival", "school", "zoo"]);
        let zoo = set.get("zoo").unwrap();
        assert_eq!(zoo.location_groups.len(), 2);
        assert_eq!(zoo.item_groups[1].names[2], "adult owl");
    }

    fn err(text: &str) -> String {
        Template::from_toml(Path::new("t.toml"), text)
            .unwrap_err()
            .to_string()
    }

    const GOOD: &str = r#"
id = "x"
category = "cars"
[[location_groups]]
name = "a"
names = ["Alpha Town", "Beta Town"]
[[item_groups]]
name = "b"
names = ["red car", "blue car"]
"#;

    #[test]
    fn validation_names_file_key_and_problem() {
        assert!(Template::from_toml(Path::new("t.toml"), GOOD).is_ok());
        let e = err(&GOOD.replace("\"blue car\"", "\"red car\""));
        assert!(
            e.contains("t.toml")
                && e.contains("item_groups[0].names[1]")
                && e.contains("duplicate"),
            "{e}"
        );
        let e = err(&GOOD.replace("Beta Town", "Beta 2"));
        assert!(
            e.contains("location_groups[0].names[1]") && e.contains("'2'"),
            "{e}"
        );
        let e = err(&GOOD.replace("red car", "car in garage"));
        assert!(e.contains("\"in\""), "{e}");
        let e = err(&GOOD.replace("id = \"x\"", "id = \"X Y\""));
        assert!(e.contains("key `id`"), "{e}");
        let e = err(&GOOD.replace("category", "categori"));
        assert!(e.contains("t.toml") && e.contains("categori"), "{e}");
        let e = err(&GOOD.replace("[\"red car\", \"blue car\"]", "[\"red car\"]"));
        assert!(e.contains("has 1 names"), "{e}");
    }
}
