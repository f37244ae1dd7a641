// Svelte 5 compiles `<script lang="ts">` itself (type annotations only), so
// no preprocessor is needed; this file exists so the tools find a config.
export default {}
