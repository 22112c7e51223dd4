from shop_loadtest.cli import main

main()
