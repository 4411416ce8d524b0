//! An ordered parallel map with a bounded window: the tool behind parallel compression and
//! parallel decompression, keeping memory bounded whatever the input size.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};

/// Number of worker threads to use by default: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs `work` over `inputs` on `threads` workers (each with its own state from `init`), and
/// hands the outputs to `sink` in input order. At most `window` items are in flight (read but
/// not yet consumed by `sink`). Stops at the first error from `inputs` or `sink`.
pub fn ordered_map<I, O, S, E>(
    threads: usize,
    window: usize,
    inputs: impl Iterator<Item = Result<I, E>>,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, I) -> O + Sync,
    mut sink: impl FnMut(O) -> Result<(), E>,
) -> Result<(), E>
where
    I: Send,
    O: Send,
{
    let threads = threads.max(1);
    let window = window.max(threads);
    std::thread::scope(|scope| {
        let (job_tx, job_rx) = mpsc::sync_channel::<(u64, I)>(window);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (out_tx, out_rx) = mpsc::channel::<(u64, O)>();
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let out_tx = out_tx.clone();
            let (init, work) = (&init, &work);
            scope.spawn(move || {
                let mut state = init();
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, input)) = job else { return };
                    if out_tx.send((seq, work(&mut state, input))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(out_tx);
        let result = drive(window, inputs, &job_tx, &out_rx, &mut sink);
        drop(job_tx);
        result
    })
}

fn drive<I, O, E>(
    window: usize,
    mut inputs: impl Iterator<Item = Result<I, E>>,
    job_tx: &mpsc::SyncSender<(u64, I)>,
    out_rx: &mpsc::Receiver<(u64, O)>,
    sink: &mut impl FnMut(O) -> Result<(), E>,
) -> Result<(), E> {
    let (mut sent, mut done) = (0u64, 0u64);
    let mut exhausted = false;
    let mut pending = BTreeMap::new();
    loop {
        while !exhausted && sent - done < window as u64 {
            match inputs.next() {
                Some(Ok(input)) => {
                    if job_tx.send((sent, input)).is_err() {
                        unreachable_workers();
                    }
                    sent += 1;
                }
                Some(Err(e)) => return Err(e),
                None => exhausted = true,
            }
        }
        if done == sent {
            return Ok(());
        }
        let Ok((seq, output)) = out_rx.recv() else {
            unreachable_workers()
        };
        pending.insert(seq, output);
        while let Some(output) = pending.remove(&done) {
            sink(output)?;
            done += 1;
        }
    }
}

/// Workers only stop when the job channel closes, which happens after `drive` returns; a worker
/// that is gone earlier has panicked, and the panic is re-raised by the thread scope.
fn unreachable_workers() -> ! {
    panic!("a worker thread of the parallel pipeline died")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_arrive_in_input_order() {
        let mut got = Vec::new();
        ordered_map(
            3,
            4,
            (0..200u64).map(Ok::<_, ()>),
            || (),
            |_, x| {
                std::thread::sleep(std::time::Duration::from_micros((x * 7919) % 300));
                x * 2
            },
            |y| {
                got.push(y);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, (0..200u64).map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_sink_error_stops_the_pipeline() {
        let mut seen = 0;
        let err = ordered_map(
            2,
            2,
            (0..1000u64).map(Ok),
            || (),
            |_, x| x,
            |x| {
                seen += 1;
                if x == 10 {
                    Err(x)
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(err, Err(10));
        assert_eq!(seen, 11);
    }
}
