//! Every rank says where it runs; rank 0 prints the lines in rank order.
//!
//! ```text
//! tessera run -n 4 ./target/release/examples/hello_ranks
//! ```

use tessera::Device;

fn main() {
    tessera::spmd(|world| {
        let (device, _) = Device::auto(world.local_rank());
        let line = format!(
            "hello from rank {} of {} on {} (device {device})",
            world.rank(),
            world.size(),
            world.host()
        );
        // Gather the lines so they print in rank order, not interleaved.
        if let Some(all) = world.gather_v(line.as_bytes(), 0)? {
            for part in all.parts() {
                println!("{}", String::from_utf8_lossy(part));
            }
        }
        Ok(())
    });
}
