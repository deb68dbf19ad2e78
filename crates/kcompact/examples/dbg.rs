use kcompact::gfp::{AllocFlags, Gfp};
use kcompact::layout::{Layout, PfnRange, ZoneSpec, ZoneType};
use kcompact::units::{NodeId, Order, Pfn};
use kcompact::{Machine, VmConfig};
fn main() {
    let zones = vec![ZoneSpec { node: NodeId(0), zone_type: ZoneType::Normal, start_pfn: Pfn(0x1000), spanned: 1024, present: vec![PfnRange::new(0x1000, 0x1400)], reserved: vec![] }];
    let l = Layout::from_zones(zones, Order(9)).unwrap();
    let mut m = Machine::boot(&l, VmConfig::default()).unwrap();
    print!("{}", kcompact::views::buddyinfo(&m));
    let ac = m.prepare_alloc(Gfp::GFP_HIGHUSER_MOVABLE, NodeId(0)).0;
    println!("{:?}", ac);
    let p = m.get_page_from_freelist(Gfp::GFP_HIGHUSER_MOVABLE, Order(0), AllocFlags::WMARK_MIN, &ac);
    println!("{p:?}");
    print!("{}", kcompact::views::buddyinfo(&m));
    print!("{}", kcompact::views::pagetypeinfo(&m));
    println!("{:?}", kcompact::verify::verify(&m));
}
