//! The jobs a component says it has: a custom section `tgrun:jobs` (a JSON array of
//! names) that `tgrun build` writes ([`section`]) into a tglib service's component, so
//! `tgrun check` can tell a configured job name the component has no function for before
//! a run fails on it.
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

/// The section listing `jobs`, as bytes to append to a component (a custom section may
/// stand anywhere among a component's sections).
pub fn section(jobs: &[String]) -> Vec<u8> {
    let data = serde_json::to_vec(jobs).unwrap_or_default();
    let mut payload = leb(SECTION.len());
    payload.extend_from_slice(SECTION.as_bytes());
    payload.extend_from_slice(&data);
    let mut out = vec![0];
    out.extend(leb(payload.len()));
    out.extend(payload);
    out
}

/// `n` as unsigned LEB128.
fn leb(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n == 0 { b } else { b | 0x80 });
        if n == 0 {
            return out;
        }
    }
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

    /// A section `id` (a custom one, `0`, named `name`) holding `data`.
    fn any_section(id: u8, name: &str, data: &[u8]) -> Vec<u8> {
        let mut payload = vec![];
        if id == 0 {
            payload.extend(leb(name.len()));
            payload.extend_from_slice(name.as_bytes());
        }
        payload.extend_from_slice(data);
        let mut out = vec![id];
        out.extend(leb(payload.len()));
        out.extend(payload);
        out
    }

    const HEADER: &[u8] = b"\0asm\x0d\x00\x01\x00";

    #[test]
    fn the_section_is_found_past_others_of_any_length() {
        let mut c = HEADER.to_vec();
        c.extend(any_section(1, "", &[7u8; 300])); // a core module, skipped by its length
        c.extend(any_section(0, "producers", b"x"));
        let jobs = vec!["add_x".to_string(), "save_topology".to_string()];
        c.extend(section(&jobs));
        assert_eq!(job_names(&c), Some(jobs));
        // Long enough for a length of two LEB128 bytes.
        let many: Vec<String> = (0..40).map(|i| format!("job_{i}")).collect();
        let mut c = HEADER.to_vec();
        c.extend(section(&many));
        assert_eq!(job_names(&c), Some(many));
    }

    #[test]
    fn no_section_or_a_broken_one_says_nothing() {
        let mut c = HEADER.to_vec();
        c.extend(any_section(1, "", &[0u8; 10]));
        assert_eq!(job_names(&c), None);
        let mut cut = HEADER.to_vec();
        cut.extend(any_section(0, SECTION, br#"["a"]"#));
        cut.truncate(cut.len() - 2);
        assert_eq!(job_names(&cut), None);
        let mut bad = HEADER.to_vec();
        bad.extend(any_section(0, SECTION, b"not json"));
        assert_eq!(job_names(&bad), None);
        assert_eq!(job_names(b"\0asm"), None);
    }
}
