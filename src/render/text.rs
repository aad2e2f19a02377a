//! Problem sentences and the question (SPEC §1 grammar):
//!
//! ```text
//! SENTENCE := REF " equals " RHS
//! RHS      := K | [K " plus " | K " times "] EXPR
//! EXPR     := REF | "the sum of " REF " and " REF | "the difference between " REF " and " REF
//!           | "the sum of " REF ", " REF (", " REF)* ", and " REF
//! ```

use super::push_int;
use crate::composer::{Combine, Outer, Problem, Quantity, FINAL_STATEMENT};
use crate::graph::write_name;
use crate::template::Template;

/// "the number of ITEM in LOC" / "the total number of CATEGORY in LOC" (capitalised at the
/// start of a sentence).
fn write_ref(out: &mut String, t: &Template, p: &Problem, q: Quantity, capital: bool) {
    out.push_str(if capital { "The " } else { "the " });
    if let Quantity::Instance { .. } = q {
        out.push_str("number of ");
    }
    write_name(out, t, p, q);
}

/// All stated sentences in the composer's shuffled order, each ending with '.', separated by
/// single spaces.
pub fn write_problem(out: &mut String, t: &Template, p: &Problem) {
    for (k, &i) in p.order.iter().enumerate() {
        if k > 0 {
            out.push(' ');
        }
        if i == FINAL_STATEMENT {
            let fin = &p.nodes[p.final_node()];
            write_ref(out, t, p, fin.q, true);
            out.push_str(" equals ");
            push_int(out, fin.value);
            out.push('.');
            continue;
        }
        let node = &p.nodes[i as usize];
        write_ref(out, t, p, node.q, true);
        if p.hidden == Some(i as usize) {
            out.push_str(" exists, and its number is greater than 0.");
            continue;
        }
        out.push_str(" equals ");
        match node.outer {
            Outer::None => {}
            Outer::Plus(k) => {
                push_int(out, k as i64);
                out.push_str(" plus ");
            }
            Outer::Times(k) => {
                push_int(out, k as i64);
                out.push_str(" times ");
            }
        }
        let parents = node.parents();
        let r = |out: &mut String, j: usize| {
            write_ref(out, t, p, p.nodes[parents[j] as usize].q, false)
        };
        match (node.combine, parents.len()) {
            (Combine::Const(k), _) => push_int(out, k as i64),
            (_, 1) => r(out, 0),
            (Combine::Diff, _) => {
                out.push_str("the difference between ");
                r(out, 0);
                out.push_str(" and ");
                r(out, 1);
            }
            (_, 2) => {
                out.push_str("the sum of ");
                r(out, 0);
                out.push_str(" and ");
                r(out, 1);
            }
            (_, n) => {
                out.push_str("the sum of ");
                for j in 0..n {
                    if j == n - 1 {
                        out.push_str(", and ");
                    } else if j > 0 {
                        out.push_str(", ");
                    }
                    r(out, j);
                }
            }
        }
        out.push('.');
    }
}

/// "What is the total number of CATEGORY in LOC?" or "How many ITEM does LOC have?"
pub fn write_question(out: &mut String, t: &Template, p: &Problem) {
    match p.nodes[p.asked()].q {
        q @ Quantity::Total { .. } => {
            out.push_str("What is the ");
            write_name(out, t, p, q);
            out.push('?');
        }
        Quantity::Instance { loc, item } => {
            let locs = &t.location_groups[p.loc_group as usize].names;
            let items = &t.item_groups[p.item_group as usize].names;
            out.push_str("How many ");
            out.push_str(&items[p.items[item as usize] as usize]);
            out.push_str(" does ");
            out.push_str(&locs[p.locs[loc as usize] as usize]);
            out.push_str(" have?");
        }
    }
}
