use dagmath::composer::*;
use dagmath::render::Rendered;
use dagmath::template::TemplateSet;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let set = TemplateSet::builtin();
    let t = set.get(&a[1]).unwrap();
    let op: u32 = a[2].parse().unwrap();
    let mode = Mode::parse(&a[3]).unwrap();
    let seed: u64 = a[4].parse().unwrap();
    let p = compose_seeded(t, op, mode, seed).unwrap();
    let r = Rendered::of(t, &p);
    println!(
        "{}\n{}\n---\n{}\n---\n{}{}",
        r.problem, r.question, r.solution, r.prompt, r.completion
    );
}
