//! Helm's layering of values files: `values.yaml`, then each `-f` file in order.

use super::CapacityError;
use serde_norway::{Mapping, Value};
use std::path::Path;

/// Layers `overlay` onto `base` as helm does: maps merge key by key, recursively; lists and
/// scalars replace; a `null` in the overlay deletes the key.
pub fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(base), Value::Mapping(overlay)) => merge_maps(base, overlay),
        (base, overlay) => *base = overlay,
    }
}

fn merge_maps(base: &mut Mapping, overlay: Mapping) {
    for (key, value) in overlay {
        if value.is_null() {
            base.remove(&key);
        } else if let Some(slot) = base.get_mut(&key) {
            merge(slot, value);
        } else {
            base.insert(key, value);
        }
    }
}

/// One values file as YAML; an empty file is an empty map.
pub fn read_values(path: &Path) -> Result<Value, CapacityError> {
    let text = oci::files::read_capped_to_string(path, oci::files::INPUT_FILE_LIMIT).map_err(
        |source| CapacityError::Read {
            path: path.to_path_buf(),
            source,
        },
    )?;
    let value: Value = serde_norway::from_str(&text).map_err(|source| CapacityError::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(if value.is_null() {
        Value::Mapping(Mapping::new())
    } else {
        value
    })
}

/// The values helm would render with: `files` layered in order.
pub fn layered(files: &[&Path]) -> Result<Value, CapacityError> {
    let mut values = Value::Mapping(Mapping::new());
    for file in files {
        merge(&mut values, read_values(file)?);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn maps_merge_deeply_and_lists_and_scalars_replace() {
        let mut base =
            yaml("a: {b: 1, c: {d: 2, e: 3}}\nlist: [1, 2, 3]\nkeep: x\ngone: y\nscalar: {x: 1}\n");
        merge(
            &mut base,
            yaml("a: {c: {e: 30, f: 4}}\nlist: [9]\ngone: null\nscalar: 5\nnew: {z: 1}\n"),
        );
        assert_eq!(
            base,
            yaml("a: {b: 1, c: {d: 2, e: 30, f: 4}}\nlist: [9]\nkeep: x\nscalar: 5\nnew: {z: 1}\n")
        );
    }

    #[test]
    fn later_files_win_and_an_empty_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let chart = write("values.yaml", "w: {r: 1, cpu: 100m}\nnodes: {}\n");
        let site = write("site.yaml", "nodes: {count: 3}\n");
        let empty = write("empty.yaml", "");
        let profile = write("p.yaml", "w: {r: 4}\n");
        let values = layered(&[&chart, &site, &empty, &profile]).unwrap();
        assert_eq!(values, yaml("w: {r: 4, cpu: 100m}\nnodes: {count: 3}\n"));
    }

    #[test]
    fn a_file_that_is_not_yaml_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "a: [1, 2\n").unwrap();
        let error = layered(&[&bad]).unwrap_err();
        assert!(matches!(error, CapacityError::Yaml { ref path, .. } if path == &bad));
    }
}
