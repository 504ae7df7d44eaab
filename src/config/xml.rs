//! A small element tree read with quick-xml that keeps each element's line number, so every config
//! error and warning can say `file:line`. Namespace prefixes (`mycat:`) and DOCTYPE lines are accepted.

use quick_xml::events::Event;
use quick_xml::Reader;
use std::path::Path;

use super::Diagnostic;

#[derive(Debug, Clone, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
    pub line: usize,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

fn local_name(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    match s.rsplit_once(':') {
        Some((_, local)) => local.to_string(),
        None => s.into_owned(),
    }
}

/// Parses `text` (the contents of `path`) into its root element.
pub fn parse(path: &Path, text: &str) -> Result<Element, Diagnostic> {
    let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let line_of = |pos: usize| match line_starts.binary_search(&pos) {
        Ok(i) => i + 1,
        Err(i) => i,
    };
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let start = reader.buffer_position() as usize;
        let ev = reader.read_event().map_err(|e| {
            Diagnostic::error(path, line_of(reader.error_position() as usize), format!("XML syntax error: {e}"))
        })?;
        // the event starts at the first non-space byte after `start`
        let ev_line = {
            let skip = text.get(start..).map(|s| s.len() - s.trim_start().len()).unwrap_or(0);
            line_of(start + skip)
        };
        match ev {
            Event::Start(e) => stack.push(element(path, &e, ev_line)?),
            Event::Empty(e) => {
                stack.push(element(path, &e, ev_line)?);
                close(&mut stack, &mut root);
            }
            Event::End(_) => close(&mut stack, &mut root),
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.decode().map_err(|err| Diagnostic::error(path, ev_line, format!("bad text: {err}")))?;
                    let s = quick_xml::escape::unescape(&s)
                        .map_err(|err| Diagnostic::error(path, ev_line, format!("bad text: {err}")))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let name = String::from_utf8_lossy(&r).into_owned();
                    let raw = format!("&{name};");
                    let s = quick_xml::escape::unescape(&raw)
                        .map_err(|err| Diagnostic::error(path, ev_line, format!("bad entity: {err}")))?;
                    top.text.push_str(&s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(Diagnostic::error(path, line_starts.len(), "unclosed element at end of file"));
    }
    root.ok_or_else(|| Diagnostic::error(path, 1, "no root element"))
}

fn element(path: &Path, e: &quick_xml::events::BytesStart<'_>, line: usize) -> Result<Element, Diagnostic> {
    let mut el = Element { name: local_name(e.name().as_ref()), line, ..Default::default() };
    for a in e.attributes() {
        let a = a.map_err(|err| Diagnostic::error(path, line, format!("bad attribute: {err}")))?;
        if a.key.as_ref() == b"xmlns" || a.key.as_ref().starts_with(b"xmlns:") {
            continue;
        }
        let val = a
            .unescape_value()
            .map_err(|err| Diagnostic::error(path, line, format!("bad attribute value: {err}")))?
            .into_owned();
        el.attrs.push((local_name(a.key.as_ref()), val));
    }
    Ok(el)
}

fn close(stack: &mut Vec<Element>, root: &mut Option<Element>) {
    if let Some(mut done) = stack.pop() {
        done.text = done.text.trim().to_string();
        match stack.last_mut() {
            Some(parent) => parent.children.push(done),
            None => *root = Some(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_namespaces_doctype_and_empty_elements() {
        let text = "<?xml version=\"1.0\"?>\n<!DOCTYPE mycat:schema SYSTEM \"schema.dtd\">\n<mycat:schema xmlns:mycat=\"http://io.mycat/\">\n  <schema name=\"A\"/>\n  <dataNode name=\"dn1\"\n     dataHost=\"h\" database=\"d\" />\n  <x>a &amp; b</x>\n</mycat:schema>\n";
        let root = parse(Path::new("schema.xml"), text).unwrap();
        assert_eq!(root.name, "schema");
        assert_eq!(root.line, 3);
        assert_eq!(root.children.len(), 3);
        assert_eq!((root.children[0].name.as_str(), root.children[0].line), ("schema", 4));
        assert_eq!(root.children[1].line, 5);
        assert_eq!(root.children[1].attr("database"), Some("d"));
        assert_eq!(root.children[2].text, "a & b");
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let err = parse(Path::new("s.xml"), "<a>\n<b>\n</a>").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
    }
}
