//! Properties of composed problems over every op 1–30, both modes, all built-in templates.

use dagmath::composer::{compose_seeded, Combine, Mode, Outer, Problem, Quantity, MAX_VALUE};
use dagmath::graph::GoldGraph;
use dagmath::render::Rendered;
use dagmath::template::{Template, TemplateSet};

use super::solver::solve;

/// op(G) recomputed from the definitions: one edge per parent plus one per literal constant.
fn op_of(p: &Problem) -> u32 {
    p.needed()
        .iter()
        .map(|n| {
            let k = matches!(n.combine, Combine::Const(_)) || n.outer != Outer::None;
            n.parents().len() as u32 + k as u32
        })
        .sum()
}

fn check_structure(t: &Template, p: &Problem) -> Result<(), String> {
    if op_of(p) != p.op {
        return Err(format!("op {} but edges {}", p.op, op_of(p)));
    }
    let fin = p.final_node();
    // Every needed node is an ancestor of the final node (or the final node itself).
    let mut reach = vec![false; p.n_needed];
    reach[fin] = true;
    for i in (0..p.n_needed).rev() {
        if reach[i] {
            for &q in p.nodes[i].parents() {
                if q as usize >= p.n_needed {
                    return Err(format!("needed node {i} depends on distractor {q}"));
                }
                reach[q as usize] = true;
            }
        }
    }
    if let Some(i) = reach.iter().position(|r| !r) {
        return Err(format!(
            "needed node {i} is not an ancestor of the final node"
        ));
    }
    for (i, n) in p.nodes.iter().enumerate() {
        if n.parents().iter().any(|&q| q as usize >= i) {
            return Err(format!("node {i} has a parent that is not earlier"));
        }
        let lo = if n.is_total() { 0 } else { 1 };
        if n.value < lo || n.value > MAX_VALUE {
            return Err(format!("node {i} value {} out of range", n.value));
        }
        if let Quantity::Total { loc } = n.q {
            // A total's parents are exactly the location's instances in the problem.
            let mut want: Vec<u8> = (0..p.nodes.len() as u8)
                .filter(|&j| matches!(p.nodes[j as usize].q, Quantity::Instance { loc: l, .. } if l == loc))
                .collect();
            let mut got = n.parents().to_vec();
            want.sort();
            got.sort();
            if want != got {
                return Err(format!("total {i} sums {got:?}, location has {want:?}"));
            }
        }
        if let (Combine::Diff, [a, b]) = (n.combine, n.parents()) {
            if p.nodes[*a as usize].value < p.nodes[*b as usize].value {
                return Err(format!("node {i}: negative difference"));
            }
        }
    }
    let locs = &t.location_groups[p.loc_group as usize].names;
    let items = &t.item_groups[p.item_group as usize].names;
    if p.locs.len() > 5
        || p.items.len() > 5
        || p.locs.len() > locs.len()
        || p.items.len() > items.len()
    {
        return Err("world wider than 5".into());
    }
    match (p.mode, p.hidden) {
        (Mode::Forward, None) => {}
        (Mode::Reverse, Some(h))
            if h < p.n_needed && matches!(p.nodes[h].combine, Combine::Const(_)) => {}
        _ => return Err("hidden leaf does not match the mode".into()),
    }
    Ok(())
}

/// The numbers the gold trace assigns to each defined name agree with the graph.
fn check_trace_values(g: &GoldGraph, solution: &str) -> Result<(), String> {
    let hidden = g
        .nodes
        .iter()
        .find(|n| n.kind == dagmath::graph::NodeKind::Unknown)
        .map(|n| n.value);
    let mut seen = 0;
    for step in solution.split("Define ").skip(1) {
        let (name, rest) = step.split_once(" as ").ok_or("step without ` as `")?;
        let node = g
            .nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or(format!("unknown name {name}"))?;
        seen += 1;
        if rest.starts_with("x; we don't know") {
            continue;
        }
        let so = rest
            .split_once("; so ")
            .map(|(_, s)| s)
            .or_else(|| rest.split_once(" so ").map(|(_, s)| s));
        let so = so.ok_or(format!("no `so` in step for {name}"))?;
        let stmt = so.split(". ").next().unwrap().trim_end_matches('.');
        let last = stmt.rsplit(" = ").next().unwrap();
        let v = match last.parse::<i64>() {
            Ok(v) => v,
            Err(_) => eval_linear(last, hidden.ok_or("x without unknown")?)?,
        };
        if v != node.value {
            return Err(format!("{name}: trace says {v}, graph {}", node.value));
        }
    }
    if seen != g.nodes.len() {
        return Err(format!("{seen} steps for {} nodes", g.nodes.len()));
    }
    Ok(())
}

/// Evaluate `a*x + b` forms such as `x + 3`, `-x`, `2*x - 1` at x.
fn eval_linear(s: &str, x: i64) -> Result<i64, String> {
    let s = s.replace(" - ", " + -");
    let mut v = 0;
    for term in s.split(" + ") {
        v += match term {
            "x" => x,
            "-x" => -x,
            t if t.ends_with("*x") => {
                t[..t.len() - 2]
                    .parse::<i64>()
                    .map_err(|e| format!("{t}: {e}"))?
                    * x
            }
            t => t.parse::<i64>().map_err(|e| format!("{t}: {e}"))?,
        };
    }
    Ok(v)
}

#[test]
fn every_op_1_to_30_is_exact_in_range_and_well_posed() {
    let set = TemplateSet::builtin();
    let mut totals = [0u32; 2];
    let mut forward = 0u32;
    for tid in ["zoo", "school", "festival"] {
        let t = set.get(tid).unwrap();
        for mode in Mode::ALL {
            for op in 1..=30u32 {
                for seed in 0..40u64 {
                    let s = seed.wrapping_mul(1_000_003) ^ (op as u64) << 32;
                    let p = compose_seeded(t, op, mode, s).unwrap();
                    let ctx = format!("{tid} {mode} op {op} seed {s}");
                    check_structure(t, &p)
                        .map_err(|e| format!("{ctx}: {e}"))
                        .unwrap();
                    let r = Rendered::of(t, &p);
                    let g = GoldGraph::from_problem(t, &p);
                    check_trace_values(&g, &r.solution)
                        .map_err(|e| format!("{ctx}: {e}\n{}", r.solution))
                        .unwrap();
                    let solved = solve(&r.problem, &r.question)
                        .map_err(|e| {
                            format!("{ctx}: not well-posed: {e}\n{}\n{}", r.problem, r.question)
                        })
                        .unwrap();
                    assert_eq!(
                        solved,
                        p.answer() as i128,
                        "{ctx}: solver disagrees\n{}",
                        r.problem
                    );
                    if mode == Mode::Forward && op >= 2 {
                        forward += 1;
                        totals[p.asks_total() as usize] += 1;
                    }
                }
            }
        }
    }
    // About 87% of forward questions ask for a location total (the reference's share).
    let share = totals[1] as f64 / forward as f64;
    assert!((0.82..0.92).contains(&share), "total share {share}");
}

#[test]
fn many_seeds_op_count_exact() {
    // Cheaper structural check over many more seeds.
    let set = TemplateSet::builtin();
    let t = set.get("zoo").unwrap();
    for op in 1..=30u32 {
        for mode in Mode::ALL {
            for seed in 0..300u64 {
                let p = compose_seeded(t, op, mode, seed).unwrap();
                check_structure(t, &p)
                    .unwrap_or_else(|e| panic!("op {op} {mode} seed {seed}: {e}"));
            }
        }
    }
}

#[test]
fn ops_beyond_30_until_letters_run_out_then_a_clear_error() {
    let set = TemplateSet::builtin();
    let t = set.get("zoo").unwrap();
    for op in [35u32, 40, 45, 50, 60] {
        for mode in Mode::ALL {
            let p = compose_seeded(t, op, mode, 7).unwrap();
            check_structure(t, &p).unwrap();
            let r = Rendered::of(t, &p);
            assert_eq!(solve(&r.problem, &r.question).unwrap(), p.answer() as i128);
        }
    }
    let e = compose_seeded(t, 0, Mode::Forward, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("op 0"), "{e}");
    let e = compose_seeded(t, 1000, Mode::Forward, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("op 1000") && e.contains("1 to"), "{e}");
}

#[test]
fn same_seed_same_problem() {
    let set = TemplateSet::builtin();
    let t = set.get("festival").unwrap();
    for seed in 0..50 {
        assert_eq!(
            compose_seeded(t, 12, Mode::Reverse, seed).unwrap(),
            compose_seeded(t, 12, Mode::Reverse, seed).unwrap()
        );
    }
}
