//! The jobs a component says it has: a custom section `tgrun:jobs` (a JSON array of
//! names) that the build of a tglib service's component writes, so `tgrun check` can tell
//! a configured job name the component has no function for before a run fails on it.
//! A component without the section (a Rust job: one job, run under any name) says nothing.

/// The section's name.
pub const SECTION: &str = "tgrun:jobs";

/// The job names the component in `bytes` lists, if it has the section. Only the
/// component's own top-level sections are read (each is skipped by its length), never
/// the core modules inside it.
pub fn job_names(bytes: &[u8]) -> Option<Vec<String>> {
    let mut rest = bytes.get(8..)?;
    while let Some((&id, after)) = rest.split_first() {
        let (len, after) = leb_u32(after)?;
        let (contents, next) = after.split_at_checked(len as usize)?;
        if id == 0 {
            let (name_len, contents) = leb_u32(contents)?;
            let (name, data) = contents.split_at_checked(name_len as usize)?;
            if name == SECTION.as_bytes() {
                return serde_json::from_slice(data).ok();
            }
        }
        rest = next;
    }
    None
}

/// An unsigned LEB128 `u32` and what follows it.
fn leb_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut value = 0u32;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { b } else { b | 0x80 });
            if n == 0 {
                return;
            }
        }
    }

    fn section(id: u8, name: &str, data: &[u8]) -> Vec<u8> {
        let mut payload = vec![];
        if id == 0 {
            leb(name.len(), &mut payload);
            payload.extend_from_slice(name.as_bytes());
        }
        payload.extend_from_slice(data);
        let mut out = vec![id];
        leb(payload.len(), &mut out);
        out.extend(payload);
        out
    }

    const HEADER: &[u8] = b"\0asm\x0d\x00\x01\x00";

    #[test]
    fn the_section_is_found_past_others_of_any_length() {
        let mut c = HEADER.to_vec();
        c.extend(section(1, "", &[7u8; 300])); // a core module, skipped by its length
        c.extend(section(0, "producers", b"x"));
        c.extend(section(0, SECTION, br#"["add_x","save_topology"]"#));
        assert_eq!(
            job_names(&c),
            Some(vec!["add_x".to_string(), "save_topology".to_string()])
        );
    }

    #[test]
    fn no_section_or_a_broken_one_says_nothing() {
        let mut c = HEADER.to_vec();
        c.extend(section(1, "", &[0u8; 10]));
        assert_eq!(job_names(&c), None);
        let mut cut = HEADER.to_vec();
        cut.extend(section(0, SECTION, br#"["a"]"#));
        cut.truncate(cut.len() - 2);
        assert_eq!(job_names(&cut), None);
        let mut bad = HEADER.to_vec();
        bad.extend(section(0, SECTION, b"not json"));
        assert_eq!(job_names(&bad), None);
        assert_eq!(job_names(b"\0asm"), None);
    }
}
