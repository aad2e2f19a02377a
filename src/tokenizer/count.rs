//! Counting domain-tokenizer tokens without running the tokenizer.
//!
//! Token budgets need the length of every candidate row, and the `tokenizers` pipeline (added
//! tokens, a fancy-regex split, offsets, a word-level lookup) takes 100-300 µs for a row of op
//! 2-10, some fifty times the cost of composing and rendering it. The domain tokenizer's length
//! has a closed form: each special token is one token, and the text between them splits into
//! [`PIECE_REGEX`](super::PIECE_REGEX) pieces of one token each (the model is word-level; an
//! unknown piece is one `[UNK]`). Every character is exactly one of white space, digit,
//! punctuation/symbol or "word" under the regex's Unicode classes, and the pieces follow from
//! that class sequence, so a scan counts them: about 1 ns per byte (2-3 µs a row) for ASCII
//! text, a few times that for text with non-ASCII names. Tests hold the count equal to
//! `encode(text).len()` on every template, op and mode, on odd strings and on random ones.

use std::sync::OnceLock;

use regex::Regex;

use super::{SPECIAL_TOKENS, UNK};

// The classes of `PIECE_REGEX` (`\s`, `\d`, `[\p{P}\p{S}]`, everything else); `EDGE` stands
// before the first character of a segment between special tokens.
const SPACE: u8 = 0;
const DIGIT: u8 = 1;
const PUNCT: u8 = 2;
const WORD: u8 = 3;
const EDGE: u8 = 4;

/// The token count of `text` under the domain tokenizer.
pub(super) fn domain_count(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut n, mut segment, mut from) = (0, 0, 0);
    // Added tokens are cut out first (no special token is a prefix of another, so the leftmost
    // match is the tokenizer's leftmost-longest one).
    while let Some(k) = memchr::memchr2(b'<', b'[', &b[from..]) {
        let at = from + k;
        let special = SPECIAL_TOKENS
            .iter()
            .chain(std::iter::once(&UNK))
            .find(|t| b[at..].starts_with(t.as_bytes()));
        from = at + special.map_or(1, |t| t.len());
        if special.is_some() {
            n += pieces(&text[segment..at]) + 1;
            segment = from;
        }
    }
    n + pieces(&text[segment..])
}

/// The number of pieces in `s` (text without special tokens).
///
/// Pieces, leftmost-first, are `\s?[^\s\d\p{P}\p{S}]+ | \s?\d | \s?[\p{P}\p{S}] | \s+`: every
/// digit, every punctuation character and every run of word characters starts a piece, and so
/// does every run of white space, except that a run of exactly one white-space character
/// followed by a non-space joins that character's piece (a longer run stands alone, whole).
/// So each character's contribution depends only on its class and the two before it.
fn pieces(s: &str) -> usize {
    let b = s.as_bytes();
    if !b.is_ascii() {
        let (mut n, mut p2, mut p1) = (0, EDGE, EDGE);
        for c in s.chars().map(char_class) {
            n += step(p2, p1, c) as usize;
            (p2, p1) = (p1, c);
        }
        return n;
    }
    // Classes first, a chunk at a time, then a branch-free sum over the shifted class slices,
    // which the compiler vectorizes.
    const CHUNK: usize = 256;
    let mut classes = [EDGE; CHUNK + 2];
    let mut n = 0;
    for chunk in b.chunks(CHUNK) {
        for (c, &byte) in classes[2..].iter_mut().zip(chunk) {
            *c = ascii_class(byte);
        }
        let len = chunk.len() + 2;
        let (c, p1, p2) = (&classes[2..len], &classes[1..len - 1], &classes[..len - 2]);
        n += c
            .iter()
            .zip(p1)
            .zip(p2)
            .map(|((&c, &p1), &p2)| step(p2, p1, c))
            .sum::<u32>() as usize;
        (classes[0], classes[1]) = (classes[len - 2], classes[len - 1]);
    }
    n
}

/// Pieces started, minus pieces joined, by a character of class `c` after `p1` after `p2`: the
/// sum over a segment counts its pieces (a lone space joining `c` was counted as a start).
#[inline(always)]
fn step(p2: u8, p1: u8, c: u8) -> u32 {
    let starts = (c != p1) | (c == DIGIT) | (c == PUNCT);
    let joins = (c != SPACE) & (p1 == SPACE) & (p2 != SPACE);
    u32::from(starts) - u32::from(joins)
}

/// The class of an ASCII byte, branch-free (control bytes other than \t \n \v \f \r are
/// "word" characters under Unicode semantics).
#[inline(always)]
fn ascii_class(b: u8) -> u8 {
    let space = (b == b' ') | (b.wrapping_sub(b'\t') < 5);
    let digit = b.wrapping_sub(b'0') < 10;
    let punct = (b.wrapping_sub(b'!') < 15)
        | (b.wrapping_sub(b':') < 7)
        | (b.wrapping_sub(b'[') < 6)
        | (b.wrapping_sub(b'{') < 4);
    WORD - 3 * u8::from(space) - 2 * u8::from(digit) - u8::from(punct)
}

/// The class of any character; non-ASCII ones are asked of the `regex` crate, which shares its
/// Unicode tables with the tokenizer's fancy-regex (rendered rows hold only a few of them).
fn char_class(c: char) -> u8 {
    if c.is_ascii() {
        return ascii_class(c as u8);
    }
    static CLASSES: OnceLock<[Regex; 3]> = OnceLock::new();
    let [space, digit, punct] = CLASSES.get_or_init(|| {
        [r"\A\s\z", r"\A\d\z", r"\A[\p{P}\p{S}]\z"].map(|p| Regex::new(p).expect("class regex"))
    });
    let mut buf = [0u8; 4];
    let c: &str = c.encode_utf8(&mut buf);
    if space.is_match(c) {
        SPACE
    } else if digit.is_match(c) {
        DIGIT
    } else if punct.is_match(c) {
        PUNCT
    } else {
        WORD
    }
}

#[cfg(test)]
mod tests {
    use super::super::Tokenizer;
    use super::domain_count;
    use crate::composer::{compose_seeded, Mode};
    use crate::render::Rendered;
    use crate::template::TemplateSet;

    fn check(tok: &Tokenizer, text: &str) {
        let want = tok.encode(text).unwrap().len();
        assert_eq!(domain_count(text), want, "{text:?}");
        assert_eq!(tok.count(text).unwrap(), want, "{text:?}");
    }

    #[test]
    fn count_equals_encode_on_every_template_op_and_mode() {
        let set = TemplateSet::builtin();
        let tok = Tokenizer::domain(&set);
        let mut r = Rendered::default();
        let mut text = String::new();
        for tid in set.ids() {
            let t = set.get(tid).unwrap();
            for mode in Mode::ALL {
                for op in 1..=30 {
                    for seed in 0..3 {
                        let p = compose_seeded(t, op, mode, seed * 31 + op as u64).unwrap();
                        r.fill(t, &p);
                        text.clear();
                        text.push_str(&r.prompt);
                        text.push_str(&r.completion);
                        check(&tok, &text);
                        check(&tok, &r.solution);
                    }
                }
            }
        }
    }

    #[test]
    fn the_scan_follows_the_piece_regex() {
        // `domain_count` encodes this pattern; change both together.
        assert_eq!(
            super::super::PIECE_REGEX,
            r"\s?[^\s\d\p{P}\p{S}]+|\s?\d|\s?[\p{P}\p{S}]|\s+"
        );
    }

    #[test]
    fn count_equals_encode_on_odd_text() {
        let tok = Tokenizer::domain(&TemplateSet::builtin());
        for text in [
            "",
            " ",
            "   ",
            "a  b",
            "  b",
            "b  ",
            " \t\n x",
            "\r\n\r\n",
            "x\u{0b}y\u{0c}z",
            "ctl\u{1}\u{1f}\u{7f}chars",
            "<question><solution></solution><answer></answer></question>",
            " <question> The number of<answer> 3</answer>",
            "[PAD][EOS][UNK] [EOS]x[UNK]",
            "<question <questio> </ question> [EOS [eos]",
            "<<question>>[[PAD]]",
            "so K = 120.",
            "-12 + 3 * (4 / 5) = x; y'z \"q\" a_b c~d {e} |f| `g` @h #i $j %k ^l &m",
            "1234567890 0.5 -3,000",
            "Zebra zebra ZEBRA unknownword Foo-Bar",
            "a b  c   d    e",
            ". . .  ..  ,,, ;:!?",
            "The number of owl in Zürich Zoo — équals 3.",
            "Cinéma\u{a0}de\u{2003}Lumière ١٢٣ ½ ＡＢ€ «x» 🦉 \u{85}",
            "<question> Cinéma</question>[EOS]é",
        ] {
            check(&tok, text);
        }
    }

    #[test]
    fn count_equals_encode_on_random_strings() {
        use rand::{RngExt, SeedableRng};
        let tok = Tokenizer::domain(&TemplateSet::builtin());
        let atoms = [
            " ",
            "  ",
            "\t",
            "\n",
            "\r",
            "\u{b}",
            "\u{1}",
            "a",
            "Zoo",
            "owl",
            "7",
            "0",
            ".",
            ",",
            "=",
            "(",
            "'",
            "_",
            "<",
            ">",
            "[",
            "]",
            "/",
            "<question>",
            "</question>",
            "<answer>",
            "[EOS]",
            "[UNK]",
            "[PAD",
            "</",
            "é",
            "—",
            "\u{a0}",
            "١",
            "€",
            "🦉",
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut text = String::new();
        for _ in 0..3000 {
            text.clear();
            for _ in 0..rng.random_range(0..24) {
                text.push_str(atoms[rng.random_range(0..atoms.len())]);
            }
            check(&tok, &text);
        }
    }
}
