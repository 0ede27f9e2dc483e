//! `lander info` as text: numbers for people (`lander_spool::human`), the exact ones beside
//! them where rounding hides something; `--json` has them all exact.

use lander_spool::human;
use lander_spool::utc::format_ns;

use super::Info;

/// The text block of one file.
pub fn text(i: &Info) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<22}{v}\n"));
    let (s, r) = (&i.summary, &i.rates);
    line("File name:", i.file.clone());
    line("File format:", i.format.to_string());
    if let Some(size) = i.size {
        line("File size:", sized(size));
    }
    line(
        "Link type:",
        format!("{} ({})", i.link_type, i.link_type_number),
    );
    line("Time precision:", precision(i));
    line("Snaplen:", i.snaplen.to_string());
    line("Packets:", human::count(s.packets));
    line("Data size:", sized(s.wire_bytes));
    line("Captured bytes:", sized(s.bytes));
    line("Cut by snaplen:", human::count(s.cut));
    line("Drops reported:", human::count(s.drops));
    line("First packet:", s.min_ts_ns.map_or("n/a".into(), format_ns));
    line("Last packet:", s.max_ts_ns.map_or("n/a".into(), format_ns));
    let secs = r.duration_ns as f64 / 1e9;
    let exact = format!("{secs:.9} s");
    match secs >= 1e-3 {
        true => line("Duration:", format!("{} ({exact})", human::duration(secs))),
        false => line("Duration:", exact),
    }
    if let Some(rate) = r.data_byte_rate {
        line("Data byte rate:", human::rate(rate, "B/s"));
    }
    if let Some(rate) = r.data_bit_rate {
        line("Data bit rate:", human::rate(rate, "bit/s"));
    }
    if let Some(avg) = r.average_packet_size {
        line("Average packet size:", format!("{avg:.2} bytes"));
    }
    if let Some(rate) = r.average_packet_rate {
        line("Average packet rate:", human::rate(rate, "packets/s"));
    }
    line("Strict time order:", order(s.out_of_order));
    line("Link types:", link_types(i));
    line("Protocols:", protocols(i));
    if let Some(h) = &i.hashes {
        line("SHA256:", h.sha256.clone());
        line("BLAKE3:", h.blake3.clone());
    }
    if let Some(e) = &i.error {
        line("Error:", e.clone());
    }
    out
}

/// `2.10 MiB (2,202,009 bytes)`, or `512 B` alone when that is exact.
fn sized(n: u64) -> String {
    match n < 1024 {
        true => human::bytes(n),
        false => format!("{} ({} bytes)", human::bytes(n), human::count(n)),
    }
}

fn precision(i: &Info) -> String {
    match i.precision_digits {
        Some(d) => format!("{} ({d})", i.precision),
        None => i.precision.clone(),
    }
}

fn order(out_of_order: u64) -> String {
    match out_of_order {
        0 => "yes".into(),
        n => format!(
            "no ({} packets earlier than the one before)",
            human::count(n)
        ),
    }
}

fn link_types(i: &Info) -> String {
    let types: Vec<String> = i
        .summary
        .link_types
        .iter()
        .map(|(k, v)| format!("{k} {}", human::count(*v)))
        .collect();
    types.join(", ")
}

fn protocols(i: &Info) -> String {
    let p = &i.summary.protocols;
    let named = [
        ("ethernet", p.ethernet),
        ("vlan", p.vlan),
        ("arp", p.arp),
        ("ipv4", p.ipv4),
        ("ipv6", p.ipv6),
        ("tcp", p.tcp),
        ("udp", p.udp),
        ("icmp", p.icmp),
        ("icmpv6", p.icmpv6),
        ("other", p.other),
    ];
    let shown: Vec<String> = named
        .iter()
        .map(|(k, v)| format!("{k} {}", human::count(*v)))
        .collect();
    shown.join(" ")
}
