//! GObject references held in state that GIO uses from several threads.

/// A value holding GObject references, usable from any thread.
///
/// gtk-rs marks GObject wrappers `!Send` because it cannot know each class's threading rules.
/// What we hold this way is only referenced (atomic reference counts), used through methods
/// GIO documents as callable from any thread (streams, certificates, databases), or used
/// under the connection's own locks, which is how GIO's backends share the same objects
/// between a connection's callers and its worker threads.
pub struct Shared<T>(pub T);

// SAFETY: see the type's documentation: the objects inside are used only in thread-safe ways.
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as for Send; shared access only takes references or calls thread-safe methods.
unsafe impl<T> Sync for Shared<T> {}

impl<T: Default> Default for Shared<T> {
    fn default() -> Self {
        Self(T::default())
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}
