//! Box tables as opsml-cli prints them (tabled's "sharp" style, cells centred), so that output
//! a person or a log reader knows stays the same.

pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let rule = |left: &str, mid: &str, right: &str| {
        let parts: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        format!("{left}{}{right}", parts.join(mid))
    };
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| {
                let pad = w - width(cell);
                let left = pad / 2;
                format!(" {}{}{} ", " ".repeat(left), cell, " ".repeat(pad - left))
            })
            .collect();
        format!("│{}│", parts.join("│"))
    };
    let mut out = vec![rule("┌", "┬", "┐"), line(headers.to_vec())];
    if !rows.is_empty() {
        out.push(rule("├", "┼", "┤"));
    }
    for row in rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.push(rule("└", "┴", "┘"));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_table_like_opsml_clis() {
        let table = super::render(&["name", "version"], &[vec!["m".into(), "1.0.0".into()]]);
        assert_eq!(
            table,
            "┌──────┬─────────┐\n│ name │ version │\n├──────┼─────────┤\n│  m   │  1.0.0  │\n└──────┴─────────┘"
        );
    }
}
