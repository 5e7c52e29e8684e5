//! Device buffers between ranks: every rank fills a buffer in GPU memory,
//! sends a different number of elements to each rank
//! (`all_to_all_v_device`), gathers every rank's buffer
//! (`all_gather_v_device`), and checks what arrived against the closed
//! form. The data goes to MPI as device addresses where Open MPI is
//! CUDA-aware, and through host memory otherwise (`tessera info` says
//! which; `TESSERA_DEVICE_MPI=staged` forces the latter).
//!
//! ```text
//! tessera run -n 4 ./target/release/examples/device_exchange [cuda|emulated]
//! ```

use tessera::device::{DeviceBuffer, DeviceChoice};
use tessera::{Device, Error};

/// Element `i` of what rank `from` sends to rank `to`.
fn value(from: usize, to: usize, i: usize) -> u64 {
    ((from as u64) << 40) | ((to as u64) << 20) | i as u64
}

/// How many elements rank `from` sends to rank `to`: some pairs none.
fn count(from: usize, to: usize) -> usize {
    (from * 7 + to * 3) % 5 * 1000
}

fn main() {
    let choice = match std::env::args().nth(1).as_deref() {
        None | Some("cuda") => DeviceChoice::Cuda,
        Some("emulated") => DeviceChoice::Emulated,
        Some(other) => {
            eprintln!("usage: device_exchange [cuda|emulated], not {other:?}");
            std::process::exit(2);
        }
    };
    tessera::spmd(|world| {
        let device = Device::select(choice, world.local_rank())?;
        let (me, p) = (world.rank(), world.size());
        let counts: Vec<usize> = (0..p).map(|to| count(me, to)).collect();
        let mine: Vec<u64> = (0..p)
            .flat_map(|to| (0..count(me, to)).map(move |i| value(me, to, i)))
            .collect();
        let send = DeviceBuffer::from_slice(device, &mine)?;

        let (got, from) = world.all_to_all_v_device(&send, &counts)?;
        let want: Vec<u64> = (0..p)
            .flat_map(|src| (0..count(src, me)).map(move |i| value(src, me, i)))
            .collect();
        let want_from: Vec<usize> = (0..p).map(|src| count(src, me)).collect();
        if from != want_from || got.to_vec()? != want {
            return Err(Error::msg(format!(
                "rank {me}: all_to_all_v_device delivered the wrong elements"
            )));
        }

        let (all, each) = world.all_gather_v_device(&send)?;
        let want_all: Vec<u64> = (0..p)
            .flat_map(|src| {
                (0..p).flat_map(move |to| (0..count(src, to)).map(move |i| value(src, to, i)))
            })
            .collect();
        let want_each: Vec<usize> = (0..p)
            .map(|src| (0..p).map(|to| count(src, to)).sum())
            .collect();
        if each != want_each || all.to_vec()? != want_all {
            return Err(Error::msg(format!(
                "rank {me}: all_gather_v_device delivered the wrong elements"
            )));
        }
        if me == 0 {
            println!(
                "device exchange on {p} ranks ({device}, {:?}): all-to-all-v and all-gather-v checked",
                tessera::comm::transfer_path(device)
            );
        }
        Ok(())
    });
}
