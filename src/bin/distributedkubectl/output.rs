//! How answers are shown (YAML by default, pretty JSON with `--json`) and how
//! the YAML or JSON files given with `--f` are read into JSON values.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// The text of `value` in `format`, ending with a newline.
pub fn render(value: &Value, format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(value)? + "\n",
        Format::Yaml => serde_yaml::to_string(value)?,
    })
}

/// Print `value` to stdout; a closed pipe (`| head`) is not an error.
pub fn print(value: &Value, format: Format) -> Result<()> {
    let text = render(value, format)?;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Read a YAML or JSON document (a descriptor, a spec, a flowInput file).
pub fn read_document(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_document(&text).with_context(|| format!("{} is not valid YAML or JSON", path.display()))
}

/// Parse YAML (which includes JSON) into a JSON value.
pub fn parse_document(text: &str) -> Result<Value> {
    if text.trim().is_empty() {
        bail!("the file is empty");
    }
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    Ok(serde_yaml::from_str(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_descriptor_becomes_json() {
        let yaml = "name: numbers\nnodes:\n  - nodeName: Range\n    algorithmName: range\n    input: ['@flowInput.data', '#[1...3]']\nflowInput: {data: 5, mul: 2.5, ok: true}\n";
        let value = parse_document(yaml).unwrap();
        assert_eq!(
            value,
            json!({"name": "numbers", "nodes": [{"nodeName": "Range", "algorithmName": "range",
                   "input": ["@flowInput.data", "#[1...3]"]}], "flowInput": {"data": 5, "mul": 2.5, "ok": true}})
        );
    }

    #[test]
    fn json_is_accepted_and_bad_input_refused() {
        assert_eq!(parse_document("{\"a\": [1, null]}").unwrap(), json!({"a": [1, null]}));
        assert!(parse_document("  \n").is_err());
        assert!(parse_document("a: [1,").is_err());
    }

    #[test]
    fn renders_yaml_and_pretty_json() {
        let v = json!({"jobId": "numbers-1"});
        assert_eq!(render(&v, Format::Yaml).unwrap(), "jobId: numbers-1\n");
        assert_eq!(render(&v, Format::Json).unwrap(), "{\n  \"jobId\": \"numbers-1\"\n}\n");
    }
}
