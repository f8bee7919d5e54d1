//! Diagnostics for people (caret snippets via miette) and for machines (JSON).

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource, Report};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use trib_core::{Diagnostic, Diagnostics, Severity};

/// Colour on a terminal unless `NO_COLOR` is set.
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Renders each diagnostic as a snippet of its source with a caret, a label and the hint.
pub fn snippets(diags: &Diagnostics, sources: &BTreeMap<String, String>) -> String {
    let theme = if color_enabled() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_context_lines(1);
    let mut out = String::new();
    for d in diags {
        let report = to_report(d, sources);
        if handler.render_report(&mut out, report.as_ref()).is_err() {
            out.push_str(&d.to_string());
        }
        out.push('\n');
    }
    out
}

fn to_report(d: &Diagnostic, sources: &BTreeMap<String, String>) -> Report {
    let mut m = MietteDiagnostic::new(d.message.clone())
        .with_code(d.code.clone())
        .with_severity(match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        });
    if let Some(help) = &d.help {
        m = m.with_help(help.clone());
    }
    let Some(loc) = &d.location else {
        return Report::new(m);
    };
    let text = sources
        .get(&loc.file)
        .cloned()
        .or_else(|| std::fs::read_to_string(&loc.file).ok());
    match text {
        Some(text) if loc.offset <= text.len() => {
            let len = loc
                .length
                .min(text.len() - loc.offset)
                .max(usize::from(loc.offset < text.len()));
            m = m.with_label(LabeledSpan::new(
                d.label.clone().or_else(|| Some("here".into())),
                loc.offset,
                len,
            ));
            Report::new(m).with_source_code(NamedSource::new(loc.file.clone(), text))
        }
        _ => {
            let mut m = m;
            m.message = format!("{}:{}:{}: {}", loc.file, loc.line, loc.column, m.message);
            Report::new(m)
        }
    }
}

/// `N errors, M warnings` for the end of a run.
pub fn summary(diags: &Diagnostics) -> String {
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(diags.error_count(), "error"),
        plural(diags.warning_count(), "warning")
    )
}

/// The machine-readable form: `{"ok": bool, "errors": n, "warnings": n, "diagnostics": [...]}`.
pub fn json(diags: &Diagnostics) -> serde_json::Value {
    serde_json::json!({
        "ok": !diags.has_errors(),
        "errors": diags.error_count(),
        "warnings": diags.warning_count(),
        "diagnostics": diags,
    })
}
