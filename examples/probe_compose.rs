use dagmath::composer::*;
use dagmath::template::TemplateSet;
use rand::SeedableRng;
fn main() {
    let set = TemplateSet::builtin();
    for tid in ["zoo", "school"] {
        let t = set.get(tid).unwrap();
        for mode in Mode::ALL {
            for op in [1u32, 2, 3, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50] {
                let mut ok = 0;
                let mut err = 0;
                let mut nodes = 0;
                let mut dis = 0;
                let mut tot = 0;
                let t0 = std::time::Instant::now();
                for s in 0..2000u64 {
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s);
                    match compose(t, op, mode, &mut rng) {
                        Ok(p) => {
                            let c: u32 = p.needed().iter().map(|n| n.cost()).sum();
                            assert_eq!(c, op, "seed {s}");
                            ok += 1;
                            nodes += p.n_needed;
                            dis += p.n_distractors();
                            tot += p.asks_total() as usize;
                        }
                        Err(_) => err += 1,
                    }
                }
                println!("{tid} {mode} op {op}: ok {ok} err {err} nodes {:.1} distr {:.1} total {:.2} {:.1}us", nodes as f64/ok.max(1) as f64, dis as f64/ok.max(1) as f64, tot as f64/ok.max(1) as f64, t0.elapsed().as_micros() as f64/2000.0);
            }
        }
    }
}
