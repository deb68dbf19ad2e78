//! The model's state at the end of a run as a snapshot directory (`--snapshot` of `run`
//! and `ab`, `--end-snapshot` of `replay`), in the layout `kcompact capture` writes and
//! [`crate::snapshot_dir::load_dir`] reads: `kpageflags.zst`, `kpagecount.zst` (zstd, as
//! captured), `pageblocks.zst` (each pageblock's migratetype, which no kernel file
//! shows), `zoneinfo`, `buddyinfo` (and both again as `zoneinfo.post` and
//! `buddyinfo.post`, the readings after the arrays), `pagetypeinfo`, `vmstat`, `meminfo`, `meta.txt`,
//! `sysctl_vm.txt` and `thp.txt`. The page words are
//! [`kcompact::snapshot::image`]'s; the files are staged in an [`OutDir`] as one
//! subdirectory, renamed into place whole when the output is committed.

use crate::outdir::OutDir;
use kcompact::snapshot::image;
use kcompact::views::{buddyinfo, pagetypeinfo, zoneinfo};
use kcompact::Machine;

/// A snapshot of a model machine, its files ready to be staged.
pub struct Image {
    files: Vec<(&'static str, Vec<u8>)>,
}

/// The zstd level of the page arrays (`kcompact capture`'s).
const ZSTD_LEVEL: i32 = 3;

/// One page array as little-endian u64 words, zstd-compressed.
fn compress(words: &[u64]) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
    for chunk in words.chunks(1 << 16) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|w| w.to_le_bytes()).collect();
        enc.write_all(&bytes)?;
    }
    Ok(enc.finish()?)
}

/// The snapshot of `m`; `label` names it in `meta.txt`; `loaded`: `m` was loaded from a
/// snapshot (`replay --snapshot`). The two page arrays are built and compressed on two
/// threads (each is a pure function of `m`: the bytes do not depend on the threads).
/// `meta.txt` says `anon_layout=packed`: the loader maps the anonymous memory packed,
/// which the model's page tables suffice for.
pub fn image(m: &Machine, label: &str, loaded: bool) -> anyhow::Result<Image> {
    let (start, end) = image::pfn_range(m);
    let (flags, count) = rayon::join(
        || compress(&image::kpageflags(m, start, end, loaded)),
        || compress(&image::kpagecount(m, start, end)),
    );
    let (flags, count) = (flags?, count?);
    let meta = format!(
        "label={label}\nsource=kcompact {} model\npfn_start={start}\npfn_end={end}\npage_size=4096\nanon_layout=packed\nkpageflags_zst_bytes={}\nkpagecount_zst_bytes={}\nraw_bytes_each={}\n",
        env!("CARGO_PKG_VERSION"),
        flags.len(),
        count.len(),
        (end - start) * 8
    );
    Ok(Image {
        files: vec![
            ("kpageflags.zst", flags),
            ("kpagecount.zst", count),
            (
                "pageblocks.zst",
                zstd::bulk::compress(&image::pageblock_types(m, end), ZSTD_LEVEL)?,
            ),
            ("zoneinfo", zoneinfo(m).into_bytes()),
            ("buddyinfo", buddyinfo(m).into_bytes()),
            // A capture reads these again after the page arrays; the model does not move
            // meanwhile.
            ("zoneinfo.post", zoneinfo(m).into_bytes()),
            ("buddyinfo.post", buddyinfo(m).into_bytes()),
            ("pagetypeinfo", pagetypeinfo(m).into_bytes()),
            ("vmstat", crate::out::vmstat_text(m).into_bytes()),
            ("meminfo", image::meminfo(m).into_bytes()),
            ("sysctl_vm.txt", image::sysctl_vm(m).into_bytes()),
            ("thp.txt", image::thp(&m.config).into_bytes()),
            ("meta.txt", meta.into_bytes()),
        ],
    })
}

/// Stages `img` as the subdirectory `sub` of the output directory.
pub fn stage(dir: &mut OutDir, sub: &str, img: Image) {
    for (name, bytes) in img.files {
        dir.add(&format!("{sub}/{name}"), bytes);
    }
}
