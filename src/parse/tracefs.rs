//! A tracepoint's `format` file in tracefs (`events/GROUP/NAME/format`): its id and the
//! offset and size of each field in the raw record perf hands us. Reading offsets from
//! the kernel rather than hard-coding them keeps the decoder right across versions.

use std::collections::BTreeMap;

use super::{ParseError, num};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub offset: usize,
    pub size: usize,
    pub signed: bool,
    /// `__data_loc` fields hold (length << 16 | offset) of a string stored later in the record.
    pub data_loc: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Format {
    pub name: String,
    pub id: u32,
    pub fields: BTreeMap<String, Field>,
}

impl Format {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.get(name)
    }
}

pub fn parse(text: &str) -> Result<Format, ParseError> {
    let mut f = Format::default();
    let mut id = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(n) = t.strip_prefix("name:") {
            f.name = n.trim().to_string();
        } else if let Some(i) = t.strip_prefix("ID:") {
            id = Some(num(Some(i.trim()), "tracepoint id")?);
        } else if let Some(rest) = t.strip_prefix("field:") {
            // field:unsigned int fd;	offset:16;	size:8;	signed:0;
            let mut parts = rest.split(';').map(str::trim);
            let decl = parts.next().unwrap_or("");
            let mut offset = None;
            let mut size = None;
            let mut signed = false;
            for p in parts {
                if let Some(v) = p.strip_prefix("offset:") {
                    offset = v.parse().ok();
                } else if let Some(v) = p.strip_prefix("size:") {
                    size = v.parse().ok();
                } else if let Some(v) = p.strip_prefix("signed:") {
                    signed = v == "1";
                }
            }
            let (Some(offset), Some(size)) = (offset, size) else {
                return Err(ParseError::new("tracepoint field", decl.to_string()));
            };
            // The name is the last word of the declaration, without an array suffix.
            let name = decl
                .rsplit(|c: char| c.is_whitespace() || c == '*')
                .next()
                .unwrap_or("")
                .split('[')
                .next()
                .unwrap_or("")
                .to_string();
            if name.is_empty() {
                return Err(ParseError::new("tracepoint field", decl.to_string()));
            }
            f.fields.insert(
                name,
                Field {
                    offset,
                    size,
                    signed,
                    data_loc: decl.starts_with("__data_loc"),
                },
            );
        }
    }
    f.id = id.ok_or_else(|| ParseError::new("tracepoint format", "no ID line"))?;
    Ok(f)
}

/// Read an unsigned field from a raw record; `None` when out of bounds.
pub fn read_u64(raw: &[u8], f: &Field) -> Option<u64> {
    // Offsets and sizes come from the format file's text: checked, not trusted.
    let b = raw.get(f.offset..f.offset.checked_add(f.size)?)?;
    Some(match f.size {
        1 => b[0] as u64,
        2 => u16::from_ne_bytes([b[0], b[1]]) as u64,
        4 => u32::from_ne_bytes(b.try_into().ok()?) as u64,
        8 => u64::from_ne_bytes(b.try_into().ok()?),
        _ => return None,
    })
}

/// Read a signed field (sign-extended).
pub fn read_i64(raw: &[u8], f: &Field) -> Option<i64> {
    let v = read_u64(raw, f)?;
    Some(match f.size {
        1 => v as u8 as i8 as i64,
        2 => v as u16 as i16 as i64,
        4 => v as u32 as i32 as i64,
        _ => v as i64,
    })
}

/// A `__data_loc char[]` string, or a fixed `char[N]` field.
pub fn read_str(raw: &[u8], f: &Field) -> Option<String> {
    let bytes = if f.data_loc {
        let loc = read_u64(raw, f)? as u32;
        let (off, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
        raw.get(off..off + len)?
    } else {
        raw.get(f.offset..f.offset.checked_add(f.size)?)?
    };
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from tracefs on kernel 6.18.
    const EXEC: &str = "name: sched_process_exec\nID: 312\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;\n\tfield:pid_t old_pid;\toffset:16;\tsize:4;\tsigned:1;\n\nprint fmt: \"filename=%s pid=%d old_pid=%d\", __get_str(filename), REC->pid, REC->old_pid\n";
    const WRITE: &str = "name: sys_enter_write\nID: 779\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:unsigned int fd;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:const char * buf;\toffset:24;\tsize:8;\tsigned:0;\n\tfield:size_t count;\toffset:32;\tsize:8;\tsigned:0;\n";

    #[test]
    fn parses_real_formats() {
        let f = parse(WRITE).unwrap();
        assert_eq!(f.id, 779);
        assert_eq!(f.field("fd").unwrap().offset, 16);
        assert_eq!(f.field("buf").unwrap().offset, 24);
        assert_eq!(f.field("count").unwrap().size, 8);
        assert_eq!(f.field("common_pid").unwrap().offset, 4);
        let e = parse(EXEC).unwrap();
        assert!(e.field("filename").unwrap().data_loc);
    }

    #[test]
    fn decodes_records() {
        let e = parse(EXEC).unwrap();
        let mut raw = vec![0u8; 20];
        raw[0..2].copy_from_slice(&312u16.to_ne_bytes());
        let name = b"/bin/true\0";
        let loc: u32 = ((name.len() as u32) << 16) | 20;
        raw[8..12].copy_from_slice(&loc.to_ne_bytes());
        raw[12..16].copy_from_slice(&4242i32.to_ne_bytes());
        raw.extend_from_slice(name);
        assert_eq!(
            read_str(&raw, e.field("filename").unwrap()).as_deref(),
            Some("/bin/true")
        );
        assert_eq!(read_i64(&raw, e.field("pid").unwrap()), Some(4242));
        assert_eq!(read_u64(&raw[..3], e.field("pid").unwrap()), None);
    }

    #[test]
    fn a_field_past_the_end_of_memory_is_none_not_an_overflow() {
        let f = Field {
            offset: usize::MAX - 1,
            size: 8,
            signed: false,
            data_loc: false,
        };
        assert_eq!(read_u64(&[0u8; 16], &f), None);
        assert_eq!(read_str(&[0u8; 16], &f), None);
    }

    #[test]
    fn bad_formats() {
        assert!(parse("name: x\n").is_err());
        assert!(parse("ID: 1\n\tfield:int x;\toffset:4;\n").is_err());
    }
}
