//! `imagegen moodboards` and `imagegen visual-dna`: what the Kolbo account has, for
//! `--moodboard` and `--visual-dna`.

use serde_json::json;

use super::{connect, fail};
use crate::args::JsonArg;
use crate::exit;
use crate::output::Output;

/// The table cell for an optional text: `-` when absent, one line, at most `width` chars.
fn cell(text: Option<&str>, width: usize) -> String {
    let text = text.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("-");
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > width {
        let cut: String = one_line.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

pub(crate) async fn moodboards(args: JsonArg, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let client = match connect(&out, true).await {
        Ok(client) => client,
        Err(error) => return fail(&out, &error),
    };
    let boards = match client.moodboards().await {
        Ok(boards) => boards,
        Err(error) => return fail(&out, &error),
    };
    out.line(format!("{:<28} {:<28} MASTER PROMPT", "ID", "NAME"));
    for board in &boards {
        out.line(format!(
            "{:<28} {:<28} {}",
            board.id,
            cell(board.name.as_deref(), 28),
            cell(board.master_prompt.as_deref(), 60)
        ));
    }
    out.emit(&json!({ "moodboards": boards }));
    exit::OK
}

pub(crate) async fn visual_dna(args: JsonArg, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let client = match connect(&out, true).await {
        Ok(client) => client,
        Err(error) => return fail(&out, &error),
    };
    let dnas = match client.visual_dna().await {
        Ok(dnas) => dnas,
        Err(error) => return fail(&out, &error),
    };
    out.line(format!(
        "{:<28} {:<28} {:<12} DESCRIPTION",
        "ID", "NAME", "TYPE"
    ));
    for dna in &dnas {
        out.line(format!(
            "{:<28} {:<28} {:<12} {}",
            dna.id,
            cell(dna.name.as_deref(), 28),
            cell(dna.dna_type.as_deref(), 12),
            cell(dna.description.as_deref(), 60)
        ));
    }
    out.emit(&json!({ "visual_dna": dnas }));
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn cells_are_one_short_line() {
        assert_eq!(cell(None, 5), "-");
        assert_eq!(cell(Some("  "), 5), "-");
        assert_eq!(cell(Some("a\nb"), 5), "a b");
        assert_eq!(cell(Some("abcdefgh"), 5), "abcd…");
    }
}
