// ncursesw (Debian: libncursesw5-dev) with the wide-character API switched on.
// SwiftPM drops pkg-config's -D flags, so the define must sit here, before the include.
#ifndef GRADFLOW_CNCURSES_SHIM_H
#define GRADFLOW_CNCURSES_SHIM_H
#define NCURSES_WIDECHAR 1
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#include <locale.h>
#include <ncursesw/curses.h>

// Macros and globals that Swift cannot import (or that Swift 6 rejects as shared mutable state).
static inline WINDOW *gf_stdscr(void) { return stdscr; }
static inline int gf_colors(void) { return COLORS; }
static inline int gf_color_pairs(void) { return COLOR_PAIRS; }
static inline int gf_lines(void) { return LINES; }
static inline int gf_cols(void) { return COLS; }
static inline attr_t gf_color_pair(int n) { return COLOR_PAIR(n); }
static inline attr_t gf_a_bold(void) { return A_BOLD; }
static inline attr_t gf_a_dim(void) { return A_DIM; }
static inline attr_t gf_a_reverse(void) { return A_REVERSE; }
static inline attr_t gf_a_underline(void) { return A_UNDERLINE; }
static inline attr_t gf_a_normal(void) { return A_NORMAL; }
static inline int gf_getmaxy(WINDOW *w) { return getmaxy(w); }
static inline int gf_getmaxx(WINDOW *w) { return getmaxx(w); }
static inline int gf_key_resize(void) { return KEY_RESIZE; }
#endif
