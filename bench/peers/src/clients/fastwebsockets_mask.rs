//! Reference masking kernel: `fastwebsockets::unmask` is the only public
//! masking function among the peer crates, so `mask-kernel` can use it as the
//! yardstick (`--client fastwebsockets`, mask-kernel only).

use crate::common::{self, Args, Report, Scenario};

pub fn run(a: &Args) -> Report {
    match a.scenario {
        Scenario::MaskKernel => common::mask_kernel(|buf, m| fastwebsockets::unmask(buf, m), a.duration),
        _ => common::die("--client fastwebsockets supports only --scenario mask-kernel"),
    }
}
