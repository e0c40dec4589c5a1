from services.integrations.main import main

main()
