"""check --gdb: each module under test's symbols, added where the kernel
loads it, before its init runs. Sourced by the harness's harness.gdb
(guest/gdb.rs), which calls harness_watch_modules() with its table.

The breakpoint is on module_finalize(hdr, sechdrs, mod), the arch hook that
load_module calls once the module is placed and relocated, just before its
init can run (Linux 3.5 and 6.12 alike, arch/arm/kernel/module.c). Its
arguments are the module's ELF image as the kernel holds it: the section
headers' sh_addr are the final addresses. Only the ELF layouts (the ELF
spec's) and the offset of struct module's name (measured by the harness on
the module itself) are read: no kernel debug info is needed.
"""

import json

import gdb

SHF_ALLOC = 0x2
# Elf32_Ehdr: e_shnum and e_shstrndx, two 16-bit fields.
E_SHNUM, E_SHSTRNDX = 0x30, 0x32
# Elf32_Shdr is 40 bytes: sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size.
SHDR_SIZE = 40
SH_NAME, SH_FLAGS, SH_ADDR, SH_OFFSET, SH_SIZE = 0, 8, 12, 16, 20
# A module has a few dozen sections; more means we misread the header.
MAX_SECTIONS = 4096
# MODULE_NAME_LEN on 32-bit (64 - sizeof(unsigned long)).
MODULE_NAME_LEN = 60


def _word(raw, at, size=4):
    return int.from_bytes(raw[at:at + size], "little")


def _string(raw, at=0):
    return raw[at:].split(b"\0", 1)[0].decode("utf-8", "replace")


def _quote(path):
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _register(frame, name):
    return int(frame.read_register(name)) & 0xFFFFFFFF


def _sections(inferior, hdr, shdrs):
    """The allocated sections' names, final addresses and sizes, in file
    order."""
    ehdr = bytes(inferior.read_memory(hdr, 0x34))
    count, strndx = _word(ehdr, E_SHNUM, 2), _word(ehdr, E_SHSTRNDX, 2)
    if not 0 < strndx < count <= MAX_SECTIONS:
        raise ValueError("unexpected ELF header (%d sections, names in %d)" % (count, strndx))
    raw = bytes(inferior.read_memory(shdrs, SHDR_SIZE * count))

    def field(i, off):
        return _word(raw, i * SHDR_SIZE + off)

    # Not loaded, so still where the kernel read the file: hdr + sh_offset.
    names = bytes(inferior.read_memory(hdr + field(strndx, SH_OFFSET), field(strndx, SH_SIZE)))
    out = {}
    for i in range(1, count):
        if field(i, SH_FLAGS) & SHF_ALLOC:
            # The first of two same-named sections; gdb's -s takes names.
            out.setdefault(_string(names, field(i, SH_NAME)), (field(i, SH_ADDR), field(i, SH_SIZE)))
    return out


def _matches(module, sections):
    """Whether the loaded sections have the sizes of `module`'s: two
    modules under test may share a name (a Rust module and its C twin)."""
    # Sections the kernel keeps out of memory (.modinfo, __versions) are
    # in the file's table but not the kernel's.
    common = [name for name in module["sizes"] if name in sections]
    return bool(common) and all(sections[name][1] == module["sizes"][name] for name in common)


def add_symbol_file_command(path, sections):
    """gdb's add-symbol-file for a module whose sections are at `sections`."""
    sections = dict(sections)
    words = ["add-symbol-file", _quote(path)]
    text = sections.pop(".text", None)
    if text is not None:
        words.append("0x%x" % text)
    for name, addr in sections.items():
        words += ["-s", name, "0x%x" % addr]
    return " ".join(words)


class _ModuleLoad(gdb.Breakpoint):
    def __init__(self, table):
        # "*ADDRESS" from System.map: with kernel debug info, the name
        # would also find the generic __weak definition the linker dropped.
        super().__init__(table["hook"], internal=True)
        self.silent = True
        self.table = table
        # Module name -> an address of its symbols, to remove them when a
        # module of that name is loaded again.
        self.added = {}

    def stop(self):
        try:
            self._add()
        except (gdb.error, gdb.MemoryError, ValueError) as e:
            print("harness: could not add a module's symbols: %s" % e)
        # Never stop here: the guest goes on to the module's init.
        return False

    def _add(self):
        frame = gdb.selected_frame()
        hdr, shdrs, mod = (_register(frame, r) for r in ("r0", "r1", "r2"))
        inferior = gdb.selected_inferior()
        name = _string(bytes(inferior.read_memory(mod + self.table["name_offset"], MODULE_NAME_LEN)))
        named = [m for m in self.table["modules"] if m["name"] == name]
        if not named:
            return
        sections = _sections(inferior, hdr, shdrs)
        module = next((m for m in named if _matches(m, sections)), None)
        if module is None:
            module = named[0]
            print("harness: %s: its sections' sizes are none of the builds' under test; using %s" % (name, module["symbols"]))
        addresses = {s: a for s, (a, _) in sections.items()}
        earlier = self.added.pop(name, None)
        if earlier is not None:
            # The same name loaded again (reloaded, or another build of it):
            # the earlier symbols describe memory that is no longer theirs.
            gdb.execute("remove-symbol-file -a 0x%x" % earlier, to_string=True)
        gdb.execute(add_symbol_file_command(module["symbols"], addresses), to_string=True)
        self.added[name] = addresses.get(".text", next(iter(addresses.values())))
        shown = ", ".join("%s 0x%x" % (s, addresses[s]) for s in (".text", ".init.text", ".data", ".bss") if s in addresses)
        print("harness: %s loaded, %s added (%s)" % (name, module["symbols"].rsplit("/", 1)[-1], shown))


def harness_watch_modules(table_path):
    with open(table_path) as f:
        table = json.load(f)
    _ModuleLoad(table)
