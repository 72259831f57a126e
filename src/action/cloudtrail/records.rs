//! CloudTrail records: which ones concern the function or its role, how a
//! log file is read one record at a time, and how the collected records are
//! written (gzip'd JSON lines, byte-for-byte the same for the same records,
//! so a re-run's SHA-256 matches and the store writes nothing).

use std::fmt;
use std::io::{BufReader, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer as _;
use serde_json::Value;

/// The function and role whose records are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub function_name: String,
    pub function_arn: String,
    pub role_name: Option<String>,
    pub role_arn: Option<String>,
}

fn text<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

impl Matcher {
    fn is_function(&self, s: &str) -> bool {
        s == self.function_name
            || s == self.function_arn
            // A qualified ARN (`...:function:NAME:live`) is the same function.
            || s.strip_prefix(self.function_arn.as_str())
                .is_some_and(|rest| rest.starts_with(':'))
    }

    fn is_role(&self, s: &str) -> bool {
        self.role_arn.as_deref() == Some(s) || self.role_name.as_deref() == Some(s)
    }

    /// Whether a record is about the function (its API calls, resources)
    /// or the role (changes to it, and every call made with its sessions:
    /// the function's own code runs as `assumed-role/ROLE/FUNCTION`).
    pub fn matches(&self, r: &Value) -> bool {
        let resources = r["resources"].as_array().into_iter().flatten();
        if resources
            .filter_map(|x| x["ARN"].as_str())
            .any(|a| self.is_function(a) || self.is_role(a))
        {
            return true;
        }
        let req = &r["requestParameters"];
        if ["functionName", "functionArn"]
            .iter()
            .filter_map(|k| req[*k].as_str())
            .chain(text(r, &["responseElements", "functionArn"]))
            .any(|s| self.is_function(s))
        {
            return true;
        }
        if ["roleName", "roleArn", "role"]
            .iter()
            .filter_map(|k| req[*k].as_str())
            .any(|s| self.is_role(s))
        {
            return true;
        }
        let issuer = text(
            r,
            &["userIdentity", "sessionContext", "sessionIssuer", "arn"],
        );
        if issuer.is_some_and(|s| self.is_role(s)) {
            return true;
        }
        match (&self.role_name, text(r, &["userIdentity", "arn"])) {
            (Some(role), Some(arn)) => arn
                .split_once(":assumed-role/")
                .is_some_and(|(_, rest)| rest.split('/').next() == Some(role.as_str())),
            _ => false,
        }
    }
}

/// JSON lines, gzip'd with a fixed header (no time stamp, no file name,
/// OS "unknown") and a fixed level: the same records give the same bytes.
pub fn gzip_lines(lines: &[Value]) -> Vec<u8> {
    let mut gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::new(6));
    for line in lines {
        // Writing to a Vec cannot fail; serializing a Value cannot either.
        let _ = serde_json::to_writer(&mut gz, line);
        let _ = gz.write_all(b"\n");
    }
    gz.finish().unwrap_or_default()
}

/// Reads a CloudTrail log file (`{"Records":[...]}`, gzip'd) and hands each
/// record to `each` as it is parsed: memory holds one record, never the file.
/// Returns how many records the file held.
pub fn scan<R: Read>(gzipped: R, mut each: impl FnMut(Value)) -> Result<u64, String> {
    let reader = BufReader::with_capacity(64 * 1024, MultiGzDecoder::new(gzipped));
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut count = 0u64;
    de.deserialize_map(LogFile {
        each: &mut each,
        count: &mut count,
    })
    .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(count)
}

struct LogFile<'a, F> {
    each: &'a mut F,
    count: &'a mut u64,
}

impl<'de, F: FnMut(Value)> Visitor<'de> for LogFile<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CloudTrail log file: {\"Records\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "Records" {
                seen = true;
                map.next_value_seed(Records {
                    each: &mut *self.each,
                    count: &mut *self.count,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if seen {
            Ok(())
        } else {
            Err(serde::de::Error::missing_field("Records"))
        }
    }
}

struct Records<'a, F> {
    each: &'a mut F,
    count: &'a mut u64,
}

impl<'de, F: FnMut(Value)> DeserializeSeed<'de> for Records<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Value)> Visitor<'de> for Records<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of CloudTrail records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element::<Value>()? {
            *self.count += 1;
            (self.each)(record);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matcher() -> Matcher {
        Matcher {
            function_name: "victim".into(),
            function_arn: "arn:aws:lambda:us-east-1:111122223333:function:victim".into(),
            role_name: Some("victim-role".into()),
            role_arn: Some("arn:aws:iam::111122223333:role/app/victim-role".into()),
        }
    }

    #[test]
    fn records_about_the_function_or_its_role_match_and_others_do_not() {
        let m = matcher();
        let yes = [
            json!({"eventName": "UpdateFunctionCode20150331v2", "requestParameters": {"functionName": "victim"}}),
            json!({"eventName": "AddPermission20150331v2", "requestParameters": {"functionName": "arn:aws:lambda:us-east-1:111122223333:function:victim:live"}}),
            json!({"eventName": "Invoke", "resources": [{"ARN": "arn:aws:lambda:us-east-1:111122223333:function:victim"}]}),
            json!({"eventName": "AttachRolePolicy", "requestParameters": {"roleName": "victim-role"}}),
            json!({"eventName": "ListBuckets", "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/victim-role/victim"}}),
            json!({"eventName": "GetObject", "userIdentity": {"sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/app/victim-role"}}}}),
        ];
        for r in &yes {
            assert!(m.matches(r), "{r}");
        }
        let no = [
            json!({"eventName": "UpdateFunctionCode20150331v2", "requestParameters": {"functionName": "victim-2"}}),
            json!({"eventName": "Invoke", "resources": [{"ARN": "arn:aws:lambda:us-east-1:111122223333:function:victimx"}]}),
            json!({"eventName": "ListBuckets", "userIdentity": {"arn": "arn:aws:sts::111122223333:assumed-role/victim-role-2/x"}}),
            json!({"eventName": "ConsoleLogin"}),
        ];
        for r in &no {
            assert!(!m.matches(r), "{r}");
        }
    }

    #[test]
    fn the_same_records_give_the_same_bytes() {
        let lines = [json!({"eventID": "b", "x": 1}), json!({"eventID": "a"})];
        let a = gzip_lines(&lines);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(a, gzip_lines(&lines), "a time stamp crept into the header");
        // No time stamp in the header (bytes 4..8).
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        let mut text = String::new();
        MultiGzDecoder::new(&a[..])
            .read_to_string(&mut text)
            .unwrap_or_default();
        assert_eq!(text, "{\"eventID\":\"b\",\"x\":1}\n{\"eventID\":\"a\"}\n");
    }

    #[test]
    fn a_log_file_is_scanned_record_by_record() {
        let file = json!({"Records": [{"eventID": "1"}, {"eventID": "2"}], "Other": {"x": [1, 2]}});
        let mut gz = GzBuilder::new().write(Vec::new(), Compression::fast());
        let _ = serde_json::to_writer(&mut gz, &file);
        let bytes = gz.finish().unwrap_or_default();
        let mut ids = Vec::new();
        let n = scan(&bytes[..], |r| ids.push(r["eventID"].clone()));
        assert_eq!(n, Ok(2));
        assert_eq!(ids, [json!("1"), json!("2")]);

        // Truncated, not gzip, not a log file: each an error, never a silent zero.
        assert!(scan(&bytes[..bytes.len() / 2], |_| {}).is_err());
        assert!(scan(&b"{\"Records\":[]}"[..], |_| {}).is_err());
        let mut gz = GzBuilder::new().write(Vec::new(), Compression::fast());
        let _ = gz.write_all(b"{\"Other\": 1}");
        let bytes = gz.finish().unwrap_or_default();
        assert!(scan(&bytes[..], |_| {}).unwrap_err().contains("Records"));
    }
}
