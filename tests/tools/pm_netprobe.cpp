// placeholder, replaced by the netns helper
int main() { return 1; }
