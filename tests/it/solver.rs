//! An independent solver that reads only a problem's text and question.
//!
//! It shares no code with the composer or renderer: it parses the sentences with the grammar of
//! SPEC §1, turns every "REF equals RHS" into a linear equation over the instance quantities
//! (a location total is the sum of that location's mentioned instances), and solves the system
//! exactly with rational Gaussian elimination. A problem is well-posed when the asked quantity
//! is uniquely determined and the solution is a non-negative integer.

use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Q {
    n: i128,
    d: i128,
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

impl Q {
    fn new(n: i128, d: i128) -> Q {
        let g = gcd(n, d).max(1);
        let s = if d < 0 { -1 } else { 1 };
        Q {
            n: s * n / g,
            d: s * d / g,
        }
    }
    fn int(n: i128) -> Q {
        Q { n, d: 1 }
    }
    fn zero(self) -> bool {
        self.n == 0
    }
    fn sub(self, o: Q) -> Q {
        Q::new(self.n * o.d - o.n * self.d, self.d * o.d)
    }
    fn mul(self, o: Q) -> Q {
        Q::new(self.n * o.n, self.d * o.d)
    }
    fn div(self, o: Q) -> Q {
        Q::new(self.n * o.d, self.d * o.n)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ref {
    Instance { item: String, loc: String },
    Total { loc: String },
}

fn parse_ref(s: &str) -> Result<Ref, String> {
    let s = s.trim();
    let lower_first = |s: &str| {
        let mut c = s.chars();
        match c.next() {
            Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
            None => String::new(),
        }
    };
    let s = lower_first(s);
    if let Some(rest) = s.strip_prefix("the total number of ") {
        let (_, loc) = rest
            .split_once(" in ")
            .ok_or(format!("bad total ref `{s}`"))?;
        return Ok(Ref::Total {
            loc: loc.to_string(),
        });
    }
    if let Some(rest) = s.strip_prefix("the number of ") {
        let (item, loc) = rest.split_once(" in ").ok_or(format!("bad ref `{s}`"))?;
        return Ok(Ref::Instance {
            item: item.to_string(),
            loc: loc.to_string(),
        });
    }
    Err(format!("not a quantity reference: `{s}`"))
}

/// A linear expression: constant + Σ coef·ref.
#[derive(Debug, Clone, Default)]
struct Expr {
    konst: i128,
    terms: Vec<(i128, Ref)>,
}

fn parse_expr(s: &str) -> Result<Expr, String> {
    let mut e = Expr::default();
    if let Some(rest) = s.strip_prefix("the difference between ") {
        let (a, b) = rest
            .split_once(" and ")
            .ok_or(format!("bad difference `{s}`"))?;
        e.terms.push((1, parse_ref(a)?));
        e.terms.push((-1, parse_ref(b)?));
    } else if let Some(rest) = s.strip_prefix("the sum of ") {
        if rest.contains(", ") {
            let parts: Vec<&str> = rest.split(", ").collect();
            let n = parts.len();
            for (i, p) in parts.iter().enumerate() {
                let p = if i == n - 1 {
                    p.strip_prefix("and ")
                        .ok_or(format!("n-ary sum without `, and`: `{s}`"))?
                } else {
                    p
                };
                e.terms.push((1, parse_ref(p)?));
            }
        } else {
            let (a, b) = rest.split_once(" and ").ok_or(format!("bad sum `{s}`"))?;
            e.terms.push((1, parse_ref(a)?));
            e.terms.push((1, parse_ref(b)?));
        }
    } else {
        e.terms.push((1, parse_ref(s)?));
    }
    Ok(e)
}

fn parse_rhs(s: &str) -> Result<Expr, String> {
    if let Ok(k) = s.parse::<i128>() {
        return Ok(Expr {
            konst: k,
            terms: vec![],
        });
    }
    let (k, rest) = s
        .split_once(' ')
        .ok_or(format!("bad right-hand side `{s}`"))?;
    if let Ok(k) = k.parse::<i128>() {
        if let Some(e) = rest.strip_prefix("plus ") {
            let mut x = parse_expr(e)?;
            x.konst += k;
            return Ok(x);
        }
        if let Some(e) = rest.strip_prefix("times ") {
            let mut x = parse_expr(e)?;
            for t in &mut x.terms {
                t.0 *= k;
            }
            return Ok(x);
        }
        return Err(format!("bad right-hand side `{s}`"));
    }
    parse_expr(s)
}

/// Solve the problem from its text; returns the unique answer or why there is none.
pub fn solve(problem: &str, question: &str) -> Result<i128, String> {
    let body = problem
        .trim()
        .strip_suffix('.')
        .ok_or("problem does not end with '.'")?;
    let mut equations: Vec<(Ref, Expr)> = Vec::new();
    let mut instances: BTreeMap<Ref, usize> = BTreeMap::new();
    let mut unknowns = Vec::new();
    for sentence in body.split(". ") {
        if let Some(r) = sentence.strip_suffix(" exists, and its number is greater than 0") {
            let r = parse_ref(r)?;
            unknowns.push(r.clone());
            let n = instances.len();
            instances.entry(r).or_insert(n);
            continue;
        }
        let (lhs, rhs) = sentence
            .split_once(" equals ")
            .ok_or(format!("sentence without `equals`: `{sentence}`"))?;
        let lhs = parse_ref(lhs)?;
        if let Ref::Instance { .. } = lhs {
            let n = instances.len();
            instances.entry(lhs.clone()).or_insert(n);
        }
        equations.push((lhs, parse_rhs(rhs)?));
    }
    let n = instances.len();
    // Row: coefficients over instances, then the constant (Σ coef·x = c).
    let expand = |r: &Ref, coef: i128, row: &mut Vec<Q>| -> Result<(), String> {
        match r {
            Ref::Instance { .. } => {
                let i = *instances
                    .get(r)
                    .ok_or(format!("{r:?} is used but never stated"))?;
                row[i] = Q::new(row[i].n + coef * row[i].d, row[i].d);
            }
            Ref::Total { loc } => {
                let mut any = false;
                for (q, &i) in &instances {
                    if matches!(q, Ref::Instance { loc: l, .. } if l == loc) {
                        row[i] = Q::new(row[i].n + coef * row[i].d, row[i].d);
                        any = true;
                    }
                }
                if !any {
                    return Err(format!("total of `{loc}` has no instances"));
                }
            }
        }
        Ok(())
    };
    let mut rows: Vec<Vec<Q>> = Vec::new();
    for (lhs, rhs) in &equations {
        let mut row = vec![Q::int(0); n + 1];
        expand(lhs, 1, &mut row)?;
        for (c, r) in &rhs.terms {
            expand(r, -c, &mut row)?;
        }
        row[n] = Q::int(rhs.konst);
        rows.push(row);
    }
    // Gaussian elimination to reduced row echelon form.
    let mut pivots = vec![usize::MAX; n];
    let mut r = 0;
    for c in 0..n {
        let Some(p) = (r..rows.len()).find(|&i| !rows[i][c].zero()) else {
            continue;
        };
        rows.swap(r, p);
        let pv = rows[r][c];
        for x in rows[r].iter_mut() {
            *x = x.div(pv);
        }
        let pivot_row = rows[r].clone();
        for (i, row) in rows.iter_mut().enumerate() {
            if i != r && !row[c].zero() {
                let f = row[c];
                for (x, &p) in row.iter_mut().zip(&pivot_row) {
                    *x = x.sub(f.mul(p));
                }
            }
        }
        pivots[c] = r;
        r += 1;
    }
    if rows[r..].iter().any(|row| !row[n].zero()) {
        return Err("the sentences contradict each other".into());
    }
    let value_of = |i: usize| -> Result<Q, String> {
        let p = pivots[i];
        if p == usize::MAX || (0..n).any(|c| c != i && !rows[p][c].zero()) {
            return Err("the asked quantity is not uniquely determined".into());
        }
        Ok(rows[p][n])
    };
    let asked = parse_question(question)?;
    let v = match &asked {
        Ref::Instance { .. } => {
            value_of(*instances.get(&asked).ok_or("asked quantity never stated")?)?
        }
        Ref::Total { loc } => {
            let mut acc = Q::int(0);
            for (q, &i) in &instances {
                if matches!(q, Ref::Instance { loc: l, .. } if l == loc) {
                    let v = value_of(i)?;
                    acc = Q::new(acc.n * v.d + v.n * acc.d, acc.d * v.d);
                }
            }
            acc
        }
    };
    if v.d != 1 || v.n < 0 {
        return Err(format!(
            "answer {}/{} is not a non-negative integer",
            v.n, v.d
        ));
    }
    for u in &unknowns {
        let val = value_of(instances[u])?;
        if val.d != 1 || val.n <= 0 {
            return Err(format!(
                "unknown {u:?} = {}/{} is not a positive integer",
                val.n, val.d
            ));
        }
    }
    Ok(v.n)
}

fn parse_question(q: &str) -> Result<Ref, String> {
    if let Some(rest) = q.strip_prefix("What is ").and_then(|r| r.strip_suffix('?')) {
        return parse_ref(rest);
    }
    if let Some(rest) = q
        .strip_prefix("How many ")
        .and_then(|r| r.strip_suffix(" have?"))
    {
        let (item, loc) = rest
            .split_once(" does ")
            .ok_or(format!("bad question `{q}`"))?;
        return Ok(Ref::Instance {
            item: item.to_string(),
            loc: loc.to_string(),
        });
    }
    Err(format!("unrecognised question `{q}`"))
}

#[test]
fn solver_handles_spec_examples() {
    let p = "The number of adult owl in Jefferson Circus equals 2. The number of adult parrot in \
             Jefferson Circus equals 3 times the number of adult owl in Jefferson Circus.";
    assert_eq!(
        solve(
            p,
            "What is the total number of adult animals in Jefferson Circus?"
        ),
        Ok(8)
    );
    let r = "The number of adult fox in Maple Creek exists, and its number is greater than 0. The \
             number of adult wolf in Maple Creek equals 4 plus the number of adult fox in Maple \
             Creek. The number of adult wolf in Maple Creek equals 7.";
    assert_eq!(solve(r, "How many adult fox does Maple Creek have?"), Ok(3));
    // The reference's reverse-mode bug: the hidden sentence duplicated, a needed one lost.
    let broken =
        "The number of adult fox in Maple Creek exists, and its number is greater than 0. \
                  The number of adult fox in Maple Creek exists, and its number is greater than 0. \
                  The total number of adult animals in Maple Creek equals 7.";
    assert!(solve(broken, "How many adult fox does Maple Creek have?").is_ok());
    let ill =
        "The number of adult fox in Maple Creek exists, and its number is greater than 0. The \
               number of adult wolf in Maple Creek exists, and its number is greater than 0. The \
               total number of adult animals in Maple Creek equals 7.";
    assert!(solve(ill, "How many adult fox does Maple Creek have?").is_err());
}
