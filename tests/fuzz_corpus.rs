//! The fuzz targets on the stable toolchain: every input of the corpus kept in the repository
//! (`fuzz/corpus/<target>/`) goes through the target's body (`periscope::fuzz`), then a
//! bounded, seeded mutation of the corpus explores around it (bit flips, truncations,
//! OpenFlow lengths that lie, deep JSON nesting, huge numbers and strings, splices), so that CI
//! really fuzzes without nightly. Deterministic: the same inputs on every run. An input that
//! panics is written to `target/fuzz-crashes/` and fails the test; move it into the corpus
//! with a name that says what broke once fixed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use periscope::fuzz::TARGETS;

/// Mutations per target at most, and the time they may take (debug build, loaded machine).
const MUTATIONS: usize = 6_000;
const BUDGET: Duration = Duration::from_secs(3);

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Offsets of the OpenFlow headers in back-to-back messages, while their lengths are sane.
fn openflow_headers(b: &[u8]) -> Vec<usize> {
    let mut at = Vec::new();
    let mut i = 0;
    while i + 8 <= b.len() {
        at.push(i);
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        if len < 8 {
            break;
        }
        i += len;
    }
    at
}

/// One mutation of `seed`; `other` is another input of the corpus, for splices.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = b.len();
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = [0x00, 0xff, 0x7f, 0x80, b'"', b'\\', b'{', b'}', b'[', b']'][rng.below(10)];
            }
            2 => b.truncate(rng.below(len + 1)),
            3 => {
                // An OpenFlow length that lies: too short, one off, past the end, the maximum.
                let heads = openflow_headers(&b);
                if !heads.is_empty() {
                    let h = heads[rng.below(heads.len())];
                    let real = u16::from_be_bytes([b[h + 2], b[h + 3]]);
                    let lie = [0, 4, 7, 8, real.wrapping_sub(1), real.wrapping_add(1), 0xffff]
                        [rng.below(7)];
                    b[h + 2..h + 4].copy_from_slice(&lie.to_be_bytes());
                }
            }
            4 if len >= 2 => {
                // A version or type nobody knows, in some header.
                let heads = openflow_headers(&b);
                let h = if heads.is_empty() { 0 } else { heads[rng.below(heads.len())] };
                let field = h + rng.below(2);
                b[field] = rng.next() as u8;
            }
            5 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(i..i, junk);
            }
            6 if len > 0 => {
                // Repeat a range: floods of the same message, long runs of brackets.
                let s = rng.below(len);
                let e = (s + 1 + rng.below(64)).min(len);
                let times = 1 + rng.below(64);
                let piece = b[s..e].repeat(times);
                b.splice(e..e, piece);
            }
            7 => {
                // Deep JSON nesting: more than serde_json's recursion limit.
                let i = rng.below(len + 1);
                let depth = 100 + rng.below(2000);
                let open = if rng.below(2) == 0 { b'[' } else { b'{' };
                let mut deep = vec![open; depth];
                if rng.below(2) == 0 {
                    deep.extend(std::iter::repeat_n(if open == b'[' { b']' } else { b'}' }, depth));
                }
                b.splice(i..i, deep);
            }
            8 => {
                // A huge number, or a long string.
                let i = rng.below(len + 1);
                let piece = match rng.below(3) {
                    0 => b"18446744073709551616123456789e999".to_vec(),
                    1 => b"-9223372036854775809".to_vec(),
                    _ => {
                        let mut s = vec![b'"'];
                        s.extend(std::iter::repeat_n(b'a', 1 + rng.below(70_000)));
                        s.push(b'"');
                        s
                    }
                };
                b.splice(i..i, piece);
            }
            9 if !other.is_empty() => {
                // Splice: the start of one input, the end of another.
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            10 if len > 1 => {
                let s = rng.below(len);
                let e = (s + 1 + rng.below(32)).min(len);
                b.drain(s..e);
            }
            _ => {
                if len > 0 {
                    let i = rng.below(len);
                    b[i] = b[i].wrapping_add(1 + rng.below(3) as u8);
                }
            }
        }
    }
    b
}

fn crash_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes")
}

thread_local! {
    /// The last panic's message and place, kept by the hook installed while fuzzing.
    static PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Runs `body` on `input`; on a panic, keeps the input and says where and why.
fn run(target: &str, body: fn(&[u8]), input: &[u8], crashes: &mut Vec<String>) {
    if catch_unwind(AssertUnwindSafe(|| body(input))).is_err() {
        let dir = crash_dir();
        let _ = std::fs::create_dir_all(&dir);
        let name = format!("{target}-{:016x}", fnv(input));
        let path = dir.join(&name);
        let _ = std::fs::write(&path, input);
        let why = PANIC.with(|p| p.borrow().clone());
        crashes.push(format!("{}: {why}", path.display()));
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, x| (h ^ u64::from(*x)).wrapping_mul(0x100_0000_01b3))
}

#[test]
fn every_target_survives_its_corpus_and_a_seeded_mutation_of_it() {
    let started = Instant::now();
    let mut crashes = Vec::new();
    let mut report = Vec::new();
    // Panics are findings, collected below; their messages would only drown the report.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line()));
        let text = format!("{}{}", info.payload_as_str().unwrap_or("?"), place.unwrap_or_default());
        PANIC.with(|p| *p.borrow_mut() = text.chars().take(300).collect());
    }));
    for (target, body) in TARGETS {
        let seeds = corpus(target);
        assert!(!seeds.is_empty(), "no corpus for {target}");
        for (_, input) in &seeds {
            run(target, *body, input, &mut crashes);
        }
        let mut rng = Rng(0x5053_0000_0000_0001 ^ fnv(target.as_bytes()));
        let t0 = Instant::now();
        let mut n = 0;
        while n < MUTATIONS && t0.elapsed() < BUDGET {
            let seed = &seeds[rng.below(seeds.len())].1;
            let other = &seeds[rng.below(seeds.len())].1;
            let input = mutate(&mut rng, seed, other);
            run(target, *body, &input, &mut crashes);
            n += 1;
        }
        report.push(format!("{target}: {} seeds, {n} mutations", seeds.len()));
    }
    std::panic::set_hook(hook);
    eprintln!("{} in {:?}", report.join("; "), started.elapsed());
    assert!(crashes.is_empty(), "inputs that panicked (kept for replay):\n{}", crashes.join("\n"));
}

#[test]
fn the_mutator_lies_about_openflow_lengths_and_nests_json() {
    // The mutator reaches what the hostile-input issue lists, or the loop above explores less.
    let hello = [4u8, 0, 0, 8, 0, 0, 0, 1];
    let mut rng = Rng(7);
    let (mut lied, mut deep) = (false, false);
    for _ in 0..2_000 {
        let m = mutate(&mut rng, &hello, b"{}");
        lied |= m.len() >= 4
            && m[..2] == hello[..2]
            && [0, 4, 7, 0xffff].contains(&u16::from_be_bytes([m[2], m[3]]));
        deep |= m.windows(129).any(|w| w.iter().all(|b| *b == b'['));
    }
    assert!(lied && deep, "lied {lied}, deep {deep}");
}
