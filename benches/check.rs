//! The harness's CPU hot path: regenerating inputs, computing the float64 reference and comparing
//! a downloaded output. It runs after every timed sample, so it must stay far cheaper than the GPU
//! work it checks (the "checking the 37800x5120 rows must not dominate the run time").

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kpilot::check::{self, POISON};
use kpilot::reference;
use kpilot::task::spec::Tolerance;
use kpilot::task::Task;
use std::path::PathBuf;

fn bench(c: &mut Criterion) {
    let task = Task::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tasks"),
        "fuse_scale_shift",
    )
    .unwrap();
    let mut g = c.benchmark_group("check");
    for name in [
        "qwen_fss_S4096_C3072_scale1x1x3072.bf16_shiftfull.bf16",
        "qwen-edit_residual_ln_select01_S8424",
    ] {
        let row = task.rows.iter().find(|r| r.name == name).unwrap();
        let rf = reference::lookup(&task.spec.entries[row.entry].reference).unwrap();
        let written = reference::written(row);
        let bufs: Vec<Vec<u8>> = written
            .iter()
            .map(|&i| vec![0u8; (row.tensors[i].as_ref().unwrap().numel() * 2) as usize])
            .collect();
        let pairs: Vec<_> = written
            .iter()
            .zip(&bufs)
            .map(|(&i, b)| (row.tensors[i].as_ref().unwrap(), b.as_slice()))
            .collect();
        let units: Vec<usize> = (0..rf.units(row)).step_by(64).collect();
        let elems: u64 = pairs
            .iter()
            .map(|(d, _)| d.numel() / rf.units(row) as u64)
            .sum::<u64>()
            * units.len() as u64;
        g.throughput(Throughput::Elements(elems));
        g.bench_function(
            format!(
                "compare_sampled/{}",
                &name[..name.find('_').unwrap_or(name.len())]
            ),
            |b| {
                b.iter(|| {
                    check::compare(
                        row,
                        rf,
                        1,
                        &pairs,
                        &units,
                        &|_| Tolerance {
                            atol: 10.0,
                            rtol: 0.0,
                        },
                        POISON[0],
                    )
                })
            },
        );
        g.throughput(Throughput::Elements(pairs[0].0.numel()));
        g.bench_function(
            format!(
                "scan_full/{}",
                &name[..name.find('_').unwrap_or(name.len())]
            ),
            |b| b.iter(|| check::scan(pairs[0].0, pairs[0].1, POISON[0])),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
