#include <sqlite3.h>

/// Process-wide settings, which SQLite takes only before `sqlite3_initialize` (which the first
/// connection calls; SQLITE_MISUSE after, and the defaults stay). No memory statistics: they put
/// a global mutex around every allocation, and Debian's build has no lookaside, so every small
/// allocation is one. No up-front page-cache block: it is 20 pages that a process touching four
/// or five database pages pays a page fault for each.
static inline int latchkey_sqlite3_configure(void) {
    int status = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (status != SQLITE_OK) return status;
    return sqlite3_config(SQLITE_CONFIG_PAGECACHE, (void *)0, 0, 0);
}
