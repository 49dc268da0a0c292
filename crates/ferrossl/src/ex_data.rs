//! Application data attached to a context or a connection (OpenSSL's ex_data, pyOpenSSL's
//! `set_app_data`): a typed map, one value per type, shared with the callbacks of that object.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A typed extension slot. Callbacks receive it, so they can reach what the application attached
/// to the connection that triggered them.
#[derive(Default)]
pub struct ExData {
    slots: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl ExData {
    /// Stores `value`, replacing any earlier value of the same type.
    pub fn insert<T: Any + Send + Sync>(&self, value: T) {
        self.slots
            .lock()
            .expect("ex_data lock")
            .insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let value = self
            .slots
            .lock()
            .expect("ex_data lock")
            .get(&TypeId::of::<T>())?
            .clone();
        value.downcast::<T>().ok()
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let value = self
            .slots
            .lock()
            .expect("ex_data lock")
            .remove(&TypeId::of::<T>())?;
        value.downcast::<T>().ok()
    }
}

impl std::fmt::Debug for ExData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.slots.lock().map(|s| s.len()).unwrap_or(0);
        write!(f, "ExData({n} values)")
    }
}

#[cfg(test)]
mod tests {
    use super::ExData;

    #[test]
    fn typed_slots() {
        let ex = ExData::default();
        assert!(ex.get::<u32>().is_none());
        ex.insert(7u32);
        ex.insert(String::from("x"));
        assert_eq!(*ex.get::<u32>().unwrap(), 7);
        assert_eq!(ex.get::<String>().unwrap().as_str(), "x");
        assert_eq!(*ex.remove::<u32>().unwrap(), 7);
        assert!(ex.get::<u32>().is_none());
    }
}
