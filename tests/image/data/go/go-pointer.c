/* a Go < 1.18 build-info blob: pointers to Go string headers (see make_go_binaries.py) */
struct gostring { const unsigned char *data; long len; };
static const unsigned char version[] = "go1.16.15";
static const unsigned char modinfo[169] = {48,119,175,12,146,116,8,2,65,225,193,7,230,214,24,230,112,97,116,104,9,101,120,97,109,112,108,101,46,99,111,109,47,108,101,103,97,99,121,10,109,111,100,9,101,120,97,109,112,108,101,46,99,111,109,47,108,101,103,97,99,121,9,40,100,101,118,101,108,41,9,10,100,101,112,9,103,105,116,104,117,98,46,99,111,109,47,112,107,103,47,101,114,114,111,114,115,9,118,48,46,57,46,49,9,104,49,58,70,69,66,76,120,49,122,83,50,49,52,111,119,112,106,121,55,113,115,66,101,105,120,98,85,82,107,117,104,81,65,119,114,75,53,85,119,76,71,84,119,116,52,61,10,249,50,67,49,134,24,32,114,0,130,66,16,65,22,216,242};
static const struct gostring version_hdr = { version, sizeof(version) - 1 };
static const struct gostring modinfo_hdr = { modinfo, sizeof(modinfo) };
struct buildinfo { unsigned char magic[14]; unsigned char ptrsize; unsigned char flags;
                   const struct gostring *version; const struct gostring *modinfo; };
__attribute__((section(".go.buildinfo"), aligned(16), used))
const struct buildinfo buildinfo = { {255,32,71,111,32,98,117,105,108,100,105,110,102,58}, 8, 0, &version_hdr, &modinfo_hdr };
int main(void) { return buildinfo.ptrsize == 0; }
