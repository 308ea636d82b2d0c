//! mmc_byte, Rust part: "allocating memory by the byte".
//!
//! On load the module prints `process:<comm>`, then allocates 100 bytes with
//! kzalloc and with vzalloc, checks that each buffer is zeroed, copies "123"
//! into it (as the tutorial's `strcpy` does) and frees it. On unload it prints
//! `mmc exit!`.
//!
//! There is no Rust support in the kernels this targets (Linux 3.5 on the
//! board, Linux 6.12 on arm32 for the build checks), so this crate is a plain
//! `no_std` static library. Everything the kernel offers only as an inline
//! function or a macro (kzalloc, vzalloc, pr_*, BUG, `current`) is reached
//! through the small C shim in `shim.c`; Rust never calls a kernel symbol
//! itself.
#![no_std]

use core::ffi::{c_int, c_void, CStr};
use core::marker::PhantomData;
use core::panic::PanicInfo;
use core::ptr::NonNull;

/// The shim's interface (shim.c). Only the safe wrappers below call these.
mod ffi {
    use core::ffi::{c_char, c_void};

    extern "C" {
        /// `kzalloc(size, GFP_KERNEL)`; NULL on failure.
        pub fn mmc_shim_kzalloc(size: usize) -> *mut c_void;
        /// `kfree(p)`.
        pub fn mmc_shim_kfree(p: *mut c_void);
        /// `vzalloc(size)`; NULL on failure.
        pub fn mmc_shim_vzalloc(size: usize) -> *mut c_void;
        /// `vfree(p)`.
        pub fn mmc_shim_vfree(p: *mut c_void);
        /// `pr_info("process:%s\n", current->comm)`.
        pub fn mmc_shim_print_process();
        /// `pr_info("%s\n", line)`.
        pub fn mmc_shim_pr_info(line: *const c_char);
        /// `pr_err("mmc_byte: %s(%zu) %s\n", allocator, size, problem)`.
        pub fn mmc_shim_alloc_error(allocator: *const c_char, size: usize, problem: *const c_char);
        /// `pr_err` of a panic's location and message (not NUL-terminated).
        pub fn mmc_shim_report_panic(
            file: *const u8,
            file_len: usize,
            line: u32,
            column: u32,
            msg: *const u8,
            msg_len: usize,
        );
        /// `BUG()`: never returns.
        pub fn mmc_shim_bug() -> !;
    }
}

/// Kernel errno values (the same on every architecture and kernel version).
const ENOMEM: c_int = 12;
const EIO: c_int = 5;

/// Size of each buffer, as in the tutorial.
const BUF_SIZE: usize = 100;

/// What `strcpy(buf, "123")` writes: the text and its NUL.
const TEXT: &[u8] = b"123\0";

/// Why init failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The allocator returned NULL.
    NoMem,
    /// A z-allocator returned memory that is not all zero.
    NotZeroed,
}

impl Error {
    /// The negative errno that module init returns.
    pub fn to_errno(self) -> c_int {
        match self {
            Error::NoMem => -ENOMEM,
            Error::NotZeroed => -EIO,
        }
    }
}

/// A kernel allocator that hands out zeroed memory, with its matching free.
///
/// # Safety
/// `free` must accept exactly the non-NULL pointers `alloc_zeroed` returned.
pub unsafe trait ZeroAlloc {
    /// The allocator's C name, for messages.
    const NAME: &'static CStr;
    /// Returns `size` zeroed bytes, or NULL.
    fn alloc_zeroed(size: usize) -> *mut c_void;
    /// Frees what `alloc_zeroed` returned.
    ///
    /// # Safety
    /// `p` comes from `alloc_zeroed` and is freed once.
    unsafe fn free(p: *mut c_void);
}

/// kzalloc(GFP_KERNEL) / kfree: physically contiguous slab memory.
pub enum Kmalloc {}

/// vzalloc / vfree: virtually contiguous memory.
pub enum Vmalloc {}

unsafe impl ZeroAlloc for Kmalloc {
    const NAME: &'static CStr = c"kzalloc";
    fn alloc_zeroed(size: usize) -> *mut c_void {
        // SAFETY: kzalloc may be called with any size from process context
        // (module init runs in insmod's context).
        unsafe { ffi::mmc_shim_kzalloc(size) }
    }
    unsafe fn free(p: *mut c_void) {
        // SAFETY: the caller passes a live kzalloc pointer, once.
        unsafe { ffi::mmc_shim_kfree(p) }
    }
}

unsafe impl ZeroAlloc for Vmalloc {
    const NAME: &'static CStr = c"vzalloc";
    fn alloc_zeroed(size: usize) -> *mut c_void {
        // SAFETY: vzalloc may be called with any size from process context.
        unsafe { ffi::mmc_shim_vzalloc(size) }
    }
    unsafe fn free(p: *mut c_void) {
        // SAFETY: the caller passes a live vzalloc pointer, once.
        unsafe { ffi::mmc_shim_vfree(p) }
    }
}

/// An owned, zero-initialised byte buffer from allocator `A`, freed on drop.
///
/// Not `Clone`/`Copy` and the pointer never leaves the type, so a buffer is
/// freed exactly once, by the allocator that made it.
pub struct ZBuf<A: ZeroAlloc> {
    ptr: NonNull<u8>,
    len: usize,
    _alloc: PhantomData<A>,
}

/// A kzalloc'd buffer (kfree on drop).
pub type KBox = ZBuf<Kmalloc>;
/// A vzalloc'd buffer (vfree on drop).
pub type VBox = ZBuf<Vmalloc>;

impl<A: ZeroAlloc> ZBuf<A> {
    /// Allocates `len` zeroed bytes; `Error::NoMem` if the allocator fails.
    pub fn new_zeroed(len: usize) -> Result<Self, Error> {
        let p = A::alloc_zeroed(len);
        match NonNull::new(p.cast::<u8>()) {
            Some(ptr) => Ok(ZBuf {
                ptr,
                len,
                _alloc: PhantomData,
            }),
            None => Err(Error::NoMem),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` bytes that this value owns; they were
        // initialised (zeroed) by the allocator. (kzalloc(0) returns the
        // non-NULL ZERO_SIZE_PTR, fine for an empty slice.)
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<A: ZeroAlloc> Drop for ZBuf<A> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `A::alloc_zeroed` and this is the only
        // place that frees it.
        unsafe { A::free(self.ptr.as_ptr().cast()) }
    }
}

fn pr_info(line: &CStr) {
    // SAFETY: `line` is a NUL-terminated string.
    unsafe { ffi::mmc_shim_pr_info(line.as_ptr()) }
}

fn alloc_error<A: ZeroAlloc>(size: usize, problem: &CStr) {
    // SAFETY: both strings are NUL-terminated.
    unsafe { ffi::mmc_shim_alloc_error(A::NAME.as_ptr(), size, problem.as_ptr()) }
}

/// The tutorial's sequence for one allocator: allocate zeroed, check the
/// zeroing, strcpy "123", free (by dropping the buffer).
fn exercise<A: ZeroAlloc>(size: usize) -> Result<(), Error> {
    let mut buf = ZBuf::<A>::new_zeroed(size).inspect_err(|_| alloc_error::<A>(size, c"failed"))?;

    if buf.as_slice().iter().any(|&b| b != 0) {
        alloc_error::<A>(size, c"returned memory that is not zeroed");
        return Err(Error::NotZeroed);
    }

    // `get_mut` instead of indexing: no bounds-check panic path in the object.
    if let Some(dst) = buf.as_mut_slice().get_mut(..TEXT.len()) {
        dst.copy_from_slice(TEXT);
    }
    Ok(())
}

/// Called by the shim's module_init.
#[no_mangle]
pub extern "C" fn mmc_byte_rust_init() -> c_int {
    // SAFETY: no arguments; reads `current->comm` in process context.
    unsafe { ffi::mmc_shim_print_process() };

    match exercise::<Kmalloc>(BUF_SIZE).and_then(|()| exercise::<Vmalloc>(BUF_SIZE)) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Called by the shim's module_exit.
#[no_mangle]
pub extern "C" fn mmc_byte_rust_exit() {
    pr_info(c"mmc exit!");
}

/// A panic (there is no panicking path in the code above) is reported with
/// its location and, if it is a plain string, its message, then ends in
/// BUG(). The message is not formatted: that would pull core::fmt into the
/// module.
#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    let (file, line, column) = match info.location() {
        Some(l) => (l.file(), l.line(), l.column()),
        None => ("?", 0, 0),
    };
    let msg = info.message().as_str().unwrap_or("(formatted message)");
    // SAFETY: pointer/length pairs of live `str`s; the shim prints them with
    // "%.*s" and does not keep them.
    unsafe {
        ffi::mmc_shim_report_panic(
            file.as_ptr(),
            file.len(),
            line,
            column,
            msg.as_ptr(),
            msg.len(),
        );
        ffi::mmc_shim_bug()
    }
}
