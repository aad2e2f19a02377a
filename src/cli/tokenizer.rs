//! `dagmath tokenizer`: write the domain tokenizer as a Hugging Face `tokenizer.json`.

use std::path::PathBuf;

use dagmath::tokenizer::Tokenizer;

use super::{load_templates, CliError};

/// Write the domain tokenizer (built from the templates) as a Hugging Face tokenizer.json.
///
/// The same templates always give the same file; load it in Python with
/// `tokenizers.Tokenizer.from_file(FILE)`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output file, e.g. tokenizer.json.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Extra template directory whose names join the vocabulary.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<(), CliError> {
    let templates = load_templates(a.templates.as_deref())?;
    if a.out.is_dir() {
        return Err(CliError::usage(anyhow::anyhow!(
            "--out {}: is a folder; give a file name such as tokenizer.json",
            a.out.display()
        )));
    }
    // Replace a tokenizer.json, never some other file of the user's.
    if a.out.exists() && Tokenizer::from_file(&a.out).is_err() {
        return Err(CliError::usage(anyhow::anyhow!(
            "--out {}: exists and is not a tokenizer.json; refusing to overwrite it",
            a.out.display()
        )));
    }
    let tok = Tokenizer::domain(&templates);
    tok.save(&a.out)?;
    println!("wrote {} ({} tokens)", a.out.display(), tok.vocab_size());
    Ok(())
}
