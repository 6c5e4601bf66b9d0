use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

/// Every string of a catalogue by its path (`js.done`, `hello`).
fn strings(text: &Text) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            Value::String(s) => {
                out.insert(prefix.to_owned(), s.clone());
            }
            other => panic!("{prefix} is not a string: {other}"),
        }
    }
    let mut out = BTreeMap::new();
    walk(
        "",
        &serde_json::to_value(text).unwrap_or_else(|e| panic!("{e}")),
        &mut out,
    );
    out
}

fn placeholders(s: &str) -> Vec<String> {
    let mut found: Vec<String> = s
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect();
    found.sort();
    found
}

#[test]
fn every_language_has_every_string_with_the_same_placeholders() {
    let english = strings(Lang::En.text());
    assert!(english.len() > 250, "{} strings", english.len());
    for lang in Lang::ALL {
        let other = strings(lang.text());
        assert_eq!(
            english.keys().collect::<Vec<_>>(),
            other.keys().collect::<Vec<_>>(),
            "{lang:?}"
        );
        for (key, en) in &english {
            let translated = &other[key];
            assert!(
                !translated.trim().is_empty() || en.trim().is_empty(),
                "{lang:?} {key} is empty"
            );
            assert_eq!(
                placeholders(en),
                placeholders(translated),
                "{lang:?} {key}: {translated}"
            );
        }
    }
    // A translation that is the English word for word is likely forgotten; only these are
    // the same in Russian.
    let same: Vec<&String> = english
        .iter()
        .filter(|(k, v)| strings(Lang::Ru.text())[*k] == **v)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(same, ["col_p90", "legend_p90"], "left in English");
}

#[test]
fn the_languages_are_those_auth_and_devices_store() {
    let ours: Vec<&str> = Lang::ALL.iter().map(|l| l.code()).collect();
    assert_eq!(ours, access::LANGUAGES);
    for code in access::LANGUAGES {
        assert_eq!(Lang::parse(code).map(Lang::code), Some(*code));
    }
}

#[test]
fn the_browser_language_is_read_by_preference() {
    assert_eq!(
        Lang::from_accept_language("ru-RU,ru;q=0.9,en-US;q=0.8"),
        Some(Lang::Ru)
    );
    assert_eq!(
        Lang::from_accept_language("de-DE, en;q=0.5, ru;q=0.7"),
        Some(Lang::Ru)
    );
    assert_eq!(Lang::from_accept_language("en-GB"), Some(Lang::En));
    assert_eq!(Lang::from_accept_language("de, fr"), None);
    assert_eq!(Lang::from_accept_language("ru;q=0"), None);
    assert_eq!(Lang::from_accept_language(""), None);
}

#[test]
fn plurals_follow_each_language() {
    let forms = &Lang::Ru.text().stages;
    let ru: Vec<&str> = [1, 2, 5, 11, 12, 21, 22, 25, 111]
        .iter()
        .map(|n| Lang::Ru.plural(*n, forms))
        .collect();
    assert_eq!(
        ru,
        [
            "этап",
            "этапа",
            "этапов",
            "этапов",
            "этапов",
            "этап",
            "этапа",
            "этапов",
            "этапов"
        ]
    );
    let en = &Lang::En.text().stages;
    assert_eq!(Lang::En.plural(1, en), "stage");
    assert_eq!(Lang::En.plural(0, en), "stages");
    assert_eq!(Lang::En.plural(2, en), "stages");
}

#[test]
fn values_fill_their_places_and_times_are_local_to_the_pizzeria() {
    assert_eq!(
        fill(Lang::Ru.text().hello, &[("name", &"Анна")]),
        "Здравствуйте, Анна"
    );
    let at = DateTime::parse_from_rfc3339("2026-11-30T09:05:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(clock(at, time_zone("Europe/Moscow")), "12:05");
    assert_eq!(
        clock_seconds(at, time_zone("Asia/Yekaterinburg")),
        "14:05:00"
    );
    assert_eq!(clock(at, time_zone("Mars/Olympus_Mons")), "09:05");
}

/// What a person reads in a template once askama's tags, expressions and comments are gone:
/// the text between HTML tags and the attributes people read.
fn readable_literals(template: &str) -> Vec<String> {
    let mut text = template.to_owned();
    // These blocks fill in the attributes of `<body>` (classes, data): nothing to read.
    for block in ["{% block body_class %}", "{% block body_attrs %}"] {
        while let Some(start) = text.find(block) {
            let end = text[start..]
                .find("{% endblock %}")
                .map_or(text.len(), |e| start + e + "{% endblock %}".len());
            text.replace_range(start..end, " ");
        }
    }
    for (open, close) in [("{#", "#}"), ("{%", "%}"), ("{{", "}}")] {
        while let Some(start) = text.find(open) {
            let end = text[start..]
                .find(close)
                .map_or(text.len(), |e| start + e + close.len());
            text.replace_range(start..end, " ");
        }
    }
    let mut found = Vec::new();
    for attribute in ["placeholder", "aria-label", "title", "alt", "data-confirm"] {
        let needle = format!("{attribute}=\"");
        let mut rest = text.as_str();
        while let Some(at) = rest.find(&needle) {
            rest = &rest[at + needle.len()..];
            let value = rest.split('"').next().unwrap_or_default();
            found.push(value.to_owned());
        }
    }
    let mut outside = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => {
                in_tag = true;
                outside.push('\n');
            }
            '>' => in_tag = false,
            c if !in_tag => outside.push(c),
            _ => {}
        }
    }
    found.extend(outside.lines().map(str::to_owned));
    found
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| s.chars().any(char::is_alphabetic))
        .collect()
}

#[test]
fn templates_say_nothing_that_is_not_in_the_catalogue() {
    // Names and symbols that read the same in every language: quantiles, a sample code, keys,
    // and in the operations section an event type and a routing key as examples.
    let allowed = [
        "p50",
        "p90",
        "p99",
        "BCDF-GHJK",
        "U",
        "R",
        "Enter",
        "/device",
        "OrderPlaced",
        "cashier.order.",
    ];
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let untranslated: Vec<String> = readable_literals(&source)
            .into_iter()
            .filter(|s| !allowed.contains(&s.as_str()))
            .collect();
        assert!(
            untranslated.is_empty(),
            "{}: {untranslated:?}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 21, "{checked} templates");
    // The check itself finds what it should.
    assert_eq!(
        readable_literals("<p title=\"Hi\">{{ t.x }} Done <b>{% if a %}{{ y }}{% endif %}</b></p>"),
        ["Hi", "Done"]
    );
}
